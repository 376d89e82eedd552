"""ML Program ops at the boundaries where Core ML's definition and Keras' differ, on the engine's
batched arrays (a leading axis of predictions). The full check of these ops is the conformance run
against coremltools' own tests (tests/conformance, `make conformance`)."""

from __future__ import annotations

import numpy as np
import pytest

from kerasml.errors import KerasmlError
from kerasml.runtime import UnsupportedModelError
from kerasml.runtime.registry import MIL_OPS as OPS

RNG = np.random.default_rng(13)


from runtime_harness import call_mil as call  # noqa: E402


def test_thresholded_relu_keeps_values_at_the_threshold():
    x = np.array([[[1.0, 2.0, 3.0, -2.0]]], np.float32)  # Core ML: x >= alpha stays (Keras drops x == alpha)
    (y,) = call("thresholded_relu", x=x, alpha=np.float32(2.0))
    np.testing.assert_array_equal(y, [[[0.0, 2.0, 3.0, 0.0]]])


def test_clamped_relu_clamps_after_the_negative_slope():
    x = np.array([[-4.0, -1.0, 0.5, 7.0]], np.float32)
    (y,) = call("clamped_relu", x=x, alpha=np.float32(2.0), beta=np.float32(1.0))
    np.testing.assert_array_equal(y, [[-8.0, -2.0, 0.5, 1.0]])


def test_concat_interleave_takes_one_slice_of_each_input_in_turn():
    a = np.arange(6, dtype=np.float32).reshape(1, 3, 2)
    b = -a
    (y,) = call("concat", batched=("values",), values=[a, b], axis=np.int32(0), interleave=np.bool_(True))
    np.testing.assert_array_equal(y[0], [[0, 1], [-0, -1], [2, 3], [-2, -3], [4, 5], [-4, -5]])
    (plain,) = call("concat", batched=("values",), values=[a, b], axis=np.int32(0), interleave=np.bool_(False))
    np.testing.assert_array_equal(plain[0], np.concatenate([a[0], b[0]]))


def test_round_is_half_to_even_and_inverse_adds_its_epsilon():
    (y,) = call("round", x=np.array([[0.5, 1.5, 2.5, -0.5]], np.float32))
    np.testing.assert_array_equal(y, [[0.0, 2.0, 2.0, -0.0]])
    (inv,) = call("inverse", x=np.array([[1.0]], np.float32), epsilon=np.float32(1.0))
    np.testing.assert_allclose(inv, [[0.5]])


def test_prelu_is_per_channel_for_every_prediction():
    x = RNG.standard_normal((3, 1, 2, 4, 4)).astype(np.float32)  # 3 predictions of (1, C=2, 4, 4)
    alpha = np.array([0.1, 0.5], np.float32)
    (y,) = call("prelu", x=x, alpha=alpha)
    np.testing.assert_allclose(y, np.where(x > 0, x, x * alpha.reshape(1, 1, 2, 1, 1)))


def test_conv_3d_equals_a_sum_of_2d_convolutions():
    x = RNG.standard_normal((2, 1, 3, 4, 5, 5)).astype(np.float32)
    w = RNG.standard_normal((2, 3, 2, 3, 3)).astype(np.float32)
    (y,) = call("conv", x=x, weight=w, pad_type="valid", strides=np.array([1, 1, 1]), dilations=np.array([1, 1, 1]))
    expected = np.zeros((2, 1, 2, 3, 3, 3), np.float32)
    for d in range(3):
        for i in range(3):
            for j in range(3):
                patch = x[:, :, :, d : d + 2, i : i + 3, j : j + 3]
                expected[..., d, i, j] = np.einsum("nbcdhw,ocdhw->nbo", patch, w)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_lstm_refuses_an_activation_it_does_not_know():
    x = np.zeros((1, 2, 1, 3), np.float32)
    with pytest.raises(UnsupportedModelError, match="softsign"):
        call("lstm", batched=("x", "initial_h", "initial_c"), x=x, initial_h=np.zeros((1, 1, 2), np.float32),
             initial_c=np.zeros((1, 1, 2), np.float32), weight_ih=np.zeros((8, 3), np.float32),
             weight_hh=np.zeros((8, 2), np.float32), activation="softsign")


def test_random_ops_and_unknown_modes_are_refused():
    assert "random_uniform" not in OPS
    with pytest.raises(UnsupportedModelError, match="pad mode"):
        call("pad", x=np.zeros((1, 2, 2), np.float32), pad=np.array([1, 1]), mode="wrap")


@pytest.mark.parametrize(
    "sampling,padding,coords,align,expected",
    [  # each value worked by hand from the op's definition (and coremltools' test of it)
        ("bilinear", "constant", "normalized_minus_one_to_one", True, [8.585, 6.17, 27.5, 6.17]),
        ("nearest", "border", "unnormalized", False, [11, 11, 11, 44]),
        ("bilinear", "reflection", "normalized_zero_to_one", True, [22, 36.3, 11, 34.1]),
        ("nearest", "symmetric", "normalized_zero_to_one", False, [22, 33, 11, 33]),
    ],
)
def test_resample_reads_past_the_edges_through_the_padding_mode(sampling, padding, coords, align, expected):
    x = np.array([11.0, 22.0, 33.0, 44.0], np.float32).reshape(1, 1, 1, 2, 2)
    points = np.array([-1.0, -2.0, -3.7, -1.0, 0.0, 0.0, 3.5, 1.2], np.float32).reshape(1, 1, 2, 2, 2)
    (y,) = call("resample", batched=("x", "coordinates"), x=x, coordinates=points, sampling_mode=sampling,
                padding_mode=padding, padding_value=np.float32(6.17), coordinates_mode=coords,
                align_corners=np.bool_(align))
    np.testing.assert_allclose(y.ravel(), expected, atol=1e-4)


def test_ios17_scatter_indices_must_lie_in_bounds():
    """iOS 15's scatter counts -1 from the end; iOS 17's calls it out of bounds: an error when
    validated, undefined (refused) when not. The program's opset picks the version, not the
    parameters given."""
    data, updates = np.zeros((1, 2, 3), np.float32), np.ones((1, 2, 3), np.float32)
    common = dict(batched=("data", "updates"), data=data, updates=updates, mode="add", axis=np.int32(0))
    for opset in (15, 16):
        (y,) = call("scatter", indices=np.array([-1, 0], np.int32), opset=opset, **common)
        np.testing.assert_array_equal(y[0], [[1, 1, 1], [1, 1, 1]])
    with pytest.raises(UnsupportedModelError, match="index -1, out of bounds without validate_indices"):
        call("scatter", indices=np.array([-1, 0], np.int32), opset=17, **common)  # no validate_indices given
    with pytest.raises(KerasmlError, match="index -1, out of bounds") as info:
        call("scatter", indices=np.array([-1, 0], np.int32), validate_indices=True, opset=17, **common)
    assert not isinstance(info.value, UnsupportedModelError)
    with pytest.raises(UnsupportedModelError, match="index 2, out of bounds without validate_indices"):
        call("scatter", indices=np.array([2, 0], np.int32), validate_indices=False, opset=18, **common)
    (y,) = call("scatter", indices=np.array([1, 1], np.int32), validate_indices=True, opset=17, **common)
    np.testing.assert_array_equal(y[0], [[0, 0, 0], [2, 2, 2]])
    with pytest.raises(UnsupportedModelError, match="'validate_indices', which scatter does not declare in iOS 16"):
        call("scatter", indices=np.array([1, 1], np.int32), validate_indices=True, opset=16, **common)


def test_reshape_zero_lines_up_from_the_right():
    """iOS 17: [1, 0, -1, 0] on (2, 3) is (1, 1, 2, 3): the last 0 copies 3, the other has no axis (1)."""
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 3)  # two predictions of (2, 3)
    (y,) = call("reshape", x=x, shape=np.array([1, 0, -1, 0], np.int32))
    assert y.shape == (2, 1, 1, 2, 3)
    (y,) = call("reshape", x=x, shape=np.array([0, 0], np.int32))  # same rank: axis by axis
    assert y.shape == (2, 2, 3)
