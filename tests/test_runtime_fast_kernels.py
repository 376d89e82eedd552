"""The runtime's speed kernels against plain definitions: depthwise convolution (strides, dilations,
depth multipliers, uneven padding, both input layouts), layout-keeping constant padding, fused
in-place activation chains, and how batches are split over the cores."""

from __future__ import annotations

import numpy as np
import pytest

from kerasml.runtime import kernels, parallel


def _depthwise_reference(x, w, bias, stride, dilation, pads):
    """Float64, one output channel and one tap at a time, straight from the definition."""
    m, c, _, _ = x.shape
    c_out, _, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), pads[:2], pads[2:]))
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((m, c_out, oh, ow))
    for o in range(c_out):
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + (oh - 1) * sh + 1, sh)
                cols = slice(j * dw, j * dw + (ow - 1) * sw + 1, sw)
                out[:, o] += xp[:, o // (c_out // c), rows, cols] * w[o, 0, i, j]
    return out if bias is None else out + bias[None, :, None, None]


DEPTHWISE_CASES = [  # channels, multiplier, (H, W), kernel, stride, dilation, pads (top, bottom, left, right)
    (3, 1, (9, 11), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    (3, 2, (9, 11), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    (5, 1, (10, 7), (3, 2), (2, 3), (1, 1), (0, 1, 2, 0)),
    (4, 3, (12, 12), (3, 3), (1, 1), (2, 2), (2, 2, 2, 2)),
    (6, 1, (13, 13), (5, 5), (2, 2), (1, 1), (1, 2, 1, 2)),
    (3, 1, (15, 17), (3, 5), (2, 2), (2, 3), (1, 1, 2, 2)),
    (2, 2, (16, 16), (4, 4), (3, 2), (1, 2), (2, 1, 3, 0)),
    (3, 1, (9, 9), (2, 7), (1, 3), (2, 2), (0, 0, 5, 5)),
    (16, 1, (8, 8), (3, 3), (1, 1), (1, 1), (0, 0, 0, 0)),
]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("case", DEPTHWISE_CASES)
def test_depthwise_convolution_matches_its_definition(case, channels_last):
    c, mult, (h, w_), kernel, stride, dilation, pads = case
    rng = np.random.default_rng(sum(kernel) + c)
    x = rng.standard_normal((3, c, h, w_)).astype(np.float32)
    if channels_last:  # how a previous convolution hands its result on
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    w = rng.standard_normal((c * mult, 1) + kernel).astype(np.float32)
    bias = rng.standard_normal(c * mult).astype(np.float32)
    ws = kernels.Workspace()
    for b in (bias, None):
        for _ in range(2):  # the second batch runs in the reused buffers
            y = kernels.conv2d(x, w, b, stride=stride, dilation=dilation, pads=pads, groups=c, ws=ws)
            expected = _depthwise_reference(x, w, b, stride, dilation, pads)
            assert y.shape == expected.shape
            np.testing.assert_allclose(y, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (0, 2, 3, 1), (3, 1, 0, 2)])
def test_constant_padding_keeps_the_layout_and_the_values(order):
    base = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    x = np.ascontiguousarray(base.transpose(order)).transpose(np.argsort(order))  # same values, other layout
    widths = [(0, 1), (2, 0), (1, 1), (0, 3)]
    y = kernels.pad_constant(x, widths, 1.5)
    np.testing.assert_array_equal(y, np.pad(base, widths, constant_values=1.5))
    assert np.argsort([-s for s in y.strides]).tolist() == np.argsort([-s for s in x.strides]).tolist()
    buffer = np.empty(y.shape, np.float32)
    assert kernels.pad_constant(x, widths, 1.5, out=buffer) is buffer
    np.testing.assert_array_equal(buffer, y)
    with pytest.raises(ValueError):
        kernels.pad_constant(x, [(-1, 0)] * 4)


def test_in_place_chain_equals_the_layers_one_after_another():
    """ReLU6 as the converter writes it (relu, negate, max with -6, negate), on a transposed view."""
    rng = np.random.default_rng(1)
    y = (rng.standard_normal((4, 40, 40, 24)).astype(np.float32) * 8).transpose(0, 3, 1, 2)
    expected = np.clip(y, 0, 6)
    chain = [
        lambda v: np.maximum(v, 0, out=v),
        lambda v: np.add(np.multiply(v, np.float32(-1), out=v), np.float32(0), out=v),
        lambda v: np.maximum(v, np.float32(-6), out=v),
        lambda v: np.add(np.multiply(v, np.float32(-1), out=v), np.float32(0), out=v),
    ]
    out = kernels.apply_in_place(y, chain)
    assert out is y
    np.testing.assert_array_equal(y, expected)


def test_batches_split_over_the_cores(monkeypatch):
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    covered = lambda total, step: [i for s in parallel.pieces(total, step) for i in range(total)[s]]  # noqa: E731
    assert len(parallel.pieces(64, 256)) == 2          # a batch under one chunk still uses both cores
    assert len(parallel.pieces(10, 256)) == 1          # too small to be worth splitting
    assert len(parallel.pieces(1000, 256)) == 4
    for total, step in [(64, 256), (10, 256), (1000, 256), (7, 3), (0, 5)]:
        assert covered(total, step) == list(range(total))
        assert all(s.stop - s.start <= step for s in parallel.pieces(total, step))
    assert parallel.parallel_map(lambda v: v * v, [1, 2, 3]) == [1, 4, 9]
