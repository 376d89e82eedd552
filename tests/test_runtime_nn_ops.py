"""NeuralNetwork layers checked against NumPy written from NeuralNetwork.proto's formulas: Core ML's
boundaries (thresholds, epsilons, interleaving, rounding) rather than Keras'."""

from __future__ import annotations

import numpy as np
import pytest

from kerasml.runtime import UnsupportedModelError, load_model

ct = pytest.importorskip("coremltools")

from runtime_harness import nn_builder, run_nn as run, seeded  # noqa: E402

RNG = np.random.default_rng(3)
rand = seeded(3)


def builder(*shapes, rank_n=True, outputs=("out",)):
    """This module's specs are rank-N (specification version 4) unless a test asks otherwise."""
    return nn_builder(*shapes, rank_n=rank_n, outputs=outputs)


# -- activations -------------------------------------------------------------------------------------
def test_thresholded_relu_keeps_values_at_the_threshold():
    x = np.array([1.0, 2.0, 2.5, -3.0], np.float32).reshape(1, 4, 1, 1)
    nn = builder((4, 1, 1), rank_n=False)
    nn.add_activation("t", "THRESHOLDEDRELU", "data", "out", params=2.0)
    np.testing.assert_array_equal(run(nn, x).ravel(), [0, 2, 2.5, 0])  # Keras' layer would zero the 2


def test_clamped_relu_and_parametric_softplus():
    x = rand(2, 3, 2, 2)
    nn = builder((3, 2, 2))
    nn.add_clamped_relu("c", "data", "out", alpha=0.1, beta=1.5)
    np.testing.assert_allclose(run(nn, x), np.minimum(np.where(x >= 0, x, 0.1 * x), 1.5), atol=1e-6)
    alpha, beta = np.float32([1, 2, 3]), np.float32([0.5, 1, 2])
    nn = builder((3, 2, 2), rank_n=False)
    nn.add_activation("s", "PARAMETRICSOFTPLUS", "data", "out", params=[alpha, beta])
    c = lambda v: v[:, None, None]  # noqa: E731
    np.testing.assert_allclose(run(nn, x), c(alpha) * np.log1p(np.exp(c(beta) * x)), atol=1e-5)


@pytest.mark.parametrize("name,params,fn", [
    ("SCALED_TANH", [2.0, 0.5], lambda x: 2 * np.tanh(0.5 * x)),
    ("SIGMOID_HARD", [0.2, 0.5], lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    ("LEAKYRELU", [0.1], lambda x: np.where(x >= 0, x, 0.1 * x)),
])
def test_parameterised_activations(name, params, fn):
    x = rand(2, 3, 2, 2) * 4
    nn = builder((3, 2, 2), rank_n=False)
    nn.add_activation("a", name, "data", "out", params=params)
    np.testing.assert_allclose(run(nn, x), fn(x), atol=1e-6)


def test_erf_and_gelu_sigmoid_approximation():
    from scipy.special import erf

    x = rand(2, 5)
    nn = builder((5,))
    nn.add_erf("e", "data", "out")
    np.testing.assert_allclose(run(nn, x), erf(x), atol=1e-6)
    nn = builder((5,))
    nn.add_gelu("g", "data", "out", mode="SIGMOID_APPROXIMATION")
    np.testing.assert_allclose(run(nn, x), x / (1 + np.exp(-1.702 * x)), atol=1e-6)


# -- reductions ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,fn", [
    ("sum", np.sum), ("prod", np.prod), ("min", np.min), ("max", np.max), ("mean", np.mean),
    ("l1", lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims)),
    ("l2", lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))),
    ("sumsquare", lambda x, axis, keepdims: np.sum(x * x, axis=axis, keepdims=keepdims)),
    ("logsumexp", lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))),
    ("logsum", lambda x, axis, keepdims: np.log(np.sum(x, axis=axis, keepdims=keepdims))),
])
@pytest.mark.parametrize("axes,keepdims,reduce_all", [([1], True, False), ([-1, 0], False, False), (None, False, True)])
def test_rank_n_reductions(kind, fn, axes, keepdims, reduce_all):
    x = np.abs(rand(2, 3, 4)) + 0.5  # positive, so logsum is defined
    nn = builder((3, 4))
    getattr(nn, f"add_reduce_{kind}")("r", "data", "out", axes=axes, keepdims=keepdims, reduce_all=reduce_all)
    batched = (1, 2) if reduce_all else tuple(a + 1 if a >= 0 else a + 3 for a in axes)
    expected = fn(x, axis=batched, keepdims=keepdims)
    out = run(nn, x)
    np.testing.assert_allclose(out.reshape(expected.shape), expected, rtol=1e-5)
    if reduce_all:
        assert out.shape == (2, 1)  # a rank-0 result is a vector of one


@pytest.mark.parametrize("mode,fn", [
    ("sum", lambda x, a: x.sum(axis=a, keepdims=True)),
    ("logsum", lambda x, a: np.log(x + 1e-6).sum(axis=a, keepdims=True)),  # epsilon 1e-6 when unset
    ("argmax", lambda x, a: np.expand_dims(np.argmax(x, axis=a[0]), a[0]).astype(np.float32)),
])
def test_rank5_reduce(mode, fn):
    x = np.abs(rand(2, 3, 4, 5)) + 0.1
    for axis, axes in [("CHW", (1, 2, 3)), ("C", (1,)), ("W", (3,))]:
        if mode == "argmax" and len(axes) > 1:
            continue
        nn = builder((3, 4, 5), rank_n=False)
        nn.add_reduce("r", "data", "out", axis=axis, mode=mode)
        np.testing.assert_allclose(run(nn, x), fn(x, axes), rtol=1e-5)


# -- normalisation -------------------------------------------------------------------------------------
def test_mvn_l2normalize_and_lrn():
    x = rand(2, 5, 3, 4)
    nn = builder((5, 3, 4), rank_n=False)
    nn.add_mvn("m", "data", "out", across_channels=False, normalize_variance=True, epsilon=1e-5)
    mean, var = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(run(nn, x), (x - mean) / np.sqrt(var + 1e-5), atol=1e-5)
    nn = builder((5, 3, 4), rank_n=False)
    nn.add_l2_normalize("l2", "data", "out", epsilon=1e-6)
    np.testing.assert_allclose(run(nn, x), x / np.sqrt((x * x).sum(axis=(1, 2, 3), keepdims=True) + 1e-6), atol=1e-6)
    nn = builder((5, 3, 4), rank_n=False)
    nn.add_lrn("lrn", "data", "out", alpha=1e-2, beta=0.75, local_size=3, k=2.0)
    sq = np.pad(x * x, ((0, 0), (1, 1), (0, 0), (0, 0)))
    window = sq[:, :-2] + sq[:, 1:-1] + sq[:, 2:]  # channels c-1, c, c+1
    np.testing.assert_allclose(run(nn, x), x / (2.0 + 1e-2 / 3 * window) ** 0.75, atol=1e-6)


def test_instance_normalization_via_batchnorm():
    x, gamma, beta = rand(2, 3, 4, 4), rand(3), rand(3)
    nn = builder((3, 4, 4), rank_n=False)
    nn.add_batchnorm("bn", 3, gamma, beta, input_name="data", output_name="out", compute_mean_var=True,
                     instance_normalization=True, epsilon=1e-3)
    mean, var = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
    expected = gamma[:, None, None] * (x - mean) / np.sqrt(var + 1e-3) + beta[:, None, None]
    np.testing.assert_allclose(run(nn, x), expected, atol=1e-5)


# -- data movement -------------------------------------------------------------------------------------
def test_concat_nd_interleave():
    a, b = rand(1, 3, 2), rand(1, 3, 2)
    nn = builder((3, 2), (3, 2))
    nn.add_concat_nd("c", ["in0", "in1"], "out", axis=0, interleave=True)
    out = run(nn, a, b)
    np.testing.assert_array_equal(out[0, 0::2], a[0])
    np.testing.assert_array_equal(out[0, 1::2], b[0])


def test_split_slice_and_stack():
    x = rand(2, 6, 4)
    nn = builder((6, 4), outputs=("p0", "p1"))
    nn.add_split_nd("s", "data", ["p0", "p1"], axis=0, split_sizes=[2, 4])
    got = load_model(nn.spec).predict({"data": x})
    np.testing.assert_array_equal(got["p1"], x[:, 2:])
    nn = builder((6, 4, 1), rank_n=False)
    nn.add_slice("sl", "data", "out", axis="channel", start_index=1, end_index=-1, stride=2)
    np.testing.assert_array_equal(run(nn, x[..., None]), x[:, 1:5:2, :, None])
    nn = builder((6, 4), (6, 4))
    nn.add_stack("st", ["in0", "in1"], "out", axis=-1)
    np.testing.assert_array_equal(run(nn, x, x + 1), np.stack([x, x + 1], axis=-1))


def test_reorganize_data_modes_match_the_spec_example():
    x = np.arange(1, 17, dtype=np.float32).reshape(1, 8, 1, 2)
    d2s = [[[1, 5, 2, 6], [9, 13, 10, 14]], [[3, 7, 4, 8], [11, 15, 12, 16]]]
    shuffle = [[[1, 3, 2, 4], [5, 7, 6, 8]], [[9, 11, 10, 12], [13, 15, 14, 16]]]
    for mode, expected in [("DEPTH_TO_SPACE", d2s), ("PIXEL_SHUFFLE", shuffle)]:
        nn = builder((8, 1, 2), rank_n=False)
        nn.add_reorganize_data("r", "data", "out", mode=mode, block_size=2)
        np.testing.assert_array_equal(run(nn, x)[0], expected)
    nn = builder((2, 2, 4), rank_n=False)
    nn.add_reorganize_data("r", "data", "out", mode="SPACE_TO_DEPTH", block_size=2)
    np.testing.assert_array_equal(run(nn, np.float32(d2s)[None]), x.reshape(1, 8, 1, 2))


def test_constant_pad_gather_and_where():
    x = rand(2, 3, 4)
    nn = builder((3, 4))
    nn.add_constant_pad("p", ["data"], "out", value=-1.0, pad_amounts=[1, 0, 0, 2])
    np.testing.assert_array_equal(run(nn, x), np.pad(x, ((0, 0), (1, 0), (0, 2)), constant_values=-1))
    idx = np.array([[2, -1, 0]], np.float32).repeat(2, axis=0)
    nn = builder((3, 4), (3,))
    nn.add_gather("g", ["in0", "in1"], "out", axis=-1)
    np.testing.assert_array_equal(run(nn, x, idx), x[:, :, [2, 3, 0]])
    cond = (rand(2, 3, 4) > 0).astype(np.float32)
    nn = builder((3, 4), (3, 4), (3, 4))
    nn.add_where_broadcastable("w", ["in0", "in1", "in2"], "out")
    np.testing.assert_array_equal(run(nn, cond, x, -x), np.where(cond > 0, x, -x))


def test_comparisons_logical_clip_and_round():
    a, b = np.float32([[0, 1, 2, 3]]), np.float32([[1, 1, 1, 1]])
    nn = builder((4,), (4,))
    nn.add_greater_than("g", ["in0", "in1"], "out", use_greater_than_equal=True)
    np.testing.assert_array_equal(run(nn, a, b), [[0, 1, 1, 1]])
    nn = builder((4,), (4,))
    nn.add_logical("x", ["in0", "in1"], "out", mode="XOR")
    np.testing.assert_array_equal(run(nn, a, b), [[1, 0, 0, 0]])
    nn = builder((4,))
    nn.add_clip("c", "data", "out", min_value=0.5, max_value=2.5)
    np.testing.assert_array_equal(run(nn, a), [[0.5, 1, 2, 2.5]])
    nn = builder((4,))
    nn.add_round("r", "data", "out")
    np.testing.assert_array_equal(run(nn, np.float32([[0.5, 1.5, -0.5, 2.4]])), [[0, 2, -0, 2]])


def test_unary_layer_defaults_follow_the_spec():
    x = np.abs(rand(2, 3, 1, 1)) + 0.1
    nn = builder((3, 1, 1), rank_n=False)
    nn.add_unary("u", "data", "out", mode="rsqrt", epsilon=1e-4)
    nn.spec.neuralNetwork.layers[0].unary.scale = 0  # "defaults to 1.0 if not set or set to 0"
    np.testing.assert_allclose(run(nn, x), 1 / np.sqrt(x + 1e-4), rtol=1e-6)


def test_unimplemented_attributes_are_refused():
    nn = builder((3, 4, 4), rank_n=False)
    nn.add_convolution("d", 3, 2, 2, 2, 2, 2, "valid", 1, rand(2, 2, 3, 2), None, False, is_deconv=True,
                       input_name="data", output_name="out", dilation_factors=[2, 2])
    with pytest.raises(UnsupportedModelError, match="dilation factor on a deconvolution"):
        load_model(nn.spec)
    nn = builder((3, 4, 4), rank_n=False)
    nn.add_resize_bilinear("r", "data", "out", 2, 2, mode="ALIGN_ENDPOINTS_MODE")
    nn.spec.neuralNetwork.layers[0].resizeBilinear.mode.samplingMethod = 7
    with pytest.raises(UnsupportedModelError, match="sampling method 7"):
        load_model(nn.spec)


def test_embeddings_look_up_rows():
    table, bias = rand(4, 6), rand(4)  # (size, vocabulary) as the spec stores it
    ids = np.float32([[[0], [5], [2]]])
    nn = builder((3, 1))
    nn.add_embedding_nd("e", "data", "out", vocab_size=6, embedding_size=4, W=table, b=bias)
    np.testing.assert_allclose(run(nn, ids), table.T[[0, 5, 2]][None] + bias, atol=1e-6)
    with pytest.raises(Exception, match="whole numbers in 0..5"):
        run(nn, np.float32([[[0], [6], [1]]]))


def test_cumsum_topk_argsort_band_and_windows():
    x = np.float32([[4, 6, 7]])
    for exclusive, reverse, expected in [(False, False, [4, 10, 17]), (True, False, [0, 4, 10]),
                                         (False, True, [17, 13, 7]), (True, True, [13, 7, 0])]:
        nn = builder((3,))
        nn.add_cumsum("c", ["data"], "out", axis=0, reverse=reverse, exclusive=exclusive)
        np.testing.assert_array_equal(run(nn, x)[0], expected)  # the spec's example
    nn = builder((3,), outputs=("v", "i"))
    nn.add_topk("t", ["data"], ["v", "i"], k=2, axis=0)
    got = load_model(nn.spec).predict({"data": x})
    np.testing.assert_array_equal(got["v"][0], [7, 6])
    np.testing.assert_array_equal(got["i"][0], [2, 1])
    nn = builder((5,))
    nn.add_argsort("a", "data", "out", axis=0, descending=True)
    np.testing.assert_array_equal(run(nn, np.float32([[3.1, 5.4, 32.9, 3.2, 77.0]]))[0], [4, 2, 1, 3, 0])
    m = rand(1, 4, 4)
    nn = builder((4, 4))
    nn.add_matrix_band_part("b", "data", "out", num_lower=1, num_upper=0)
    np.testing.assert_array_equal(run(nn, m)[0], np.tril(m[0]) - np.tril(m[0], -2))
    seq = np.arange(7, dtype=np.float32)[None]
    nn = builder((7,))
    nn.add_sliding_windows("w", "data", "out", axis=0, window_size=3, step=2)
    np.testing.assert_array_equal(run(nn, seq)[0], [[0, 1, 2], [2, 3, 4], [4, 5, 6]])


def test_flexible_input_shapes_take_any_shape_in_range():
    nn = builder((1, 3))
    nn.add_reduce_sum("r", "data", "out", axes=[-1], keepdims=True)
    ranges = nn.spec.description.input[0].type.multiArrayType.shapeRange.sizeRanges
    for lo, hi in [(1, -1), (3, 3)]:
        ranges.add(lowerBound=lo, upperBound=hi)
    model = load_model(nn.spec)
    x = rand(1, 4, 3)
    np.testing.assert_allclose(model.predict({"data": x})["out"], x.sum(axis=-1, keepdims=True), rtol=1e-6)
    with pytest.raises(Exception, match="does not allow the shape"):
        model.predict({"data": rand(1, 4, 2)})


def test_l2_pooling_and_3d_layers():
    x = rand(1, 2, 5, 5)
    nn = builder((2, 5, 5), rank_n=False)
    nn.add_pooling("p", 3, 3, 2, 2, "L2", padding_type="VALID", input_name="data", output_name="out")
    win = np.stack([x[:, :, i : i + 3, j : j + 3] for i in (0, 2) for j in (0, 2)], axis=2)
    np.testing.assert_allclose(run(nn, x), np.sqrt((win**2).sum(axis=(-2, -1))).reshape(1, 2, 2, 2), atol=1e-5)
    v = np.arange(1, 19, dtype=np.float32).reshape(1, 1, 1, 2, 3, 3)  # the spec's pooling3d example
    nn = builder((1, 1, 2, 3, 3))
    nn.add_pooling3d("p3", "data", "out", "MAX", 2, 2, 2, 1, 1, 1, padding_mode="VALID")
    np.testing.assert_array_equal(run(nn, v)[0, 0, 0, 0], [[14, 15], [17, 18]])
    w, b = rand(3, 1, 2, 2, 2), rand(3)
    nn = builder((1, 1, 2, 3, 3))
    nn.add_convolution3d("c3", 1, 3, 2, 2, 2, w, b, True, 1, input_name="data", output_name="out")
    win = np.stack([v[0, 0, 0, :, i : i + 2, j : j + 2] for i in (0, 1) for j in (0, 1)])  # (4, 2, 2, 2)
    expected = np.einsum("kxyz,oxyz->ok", win, w[:, 0]).reshape(3, 1, 2, 2) + b[:, None, None, None]
    np.testing.assert_allclose(run(nn, v)[0, 0], expected, atol=1e-4)


# -- scatter and gather ------------------------------------------------------------------------------
def test_scatter_layers_combine_repeated_indices_in_turn():
    data, updates = rand(2, 4, 3), rand(2, 3, 3)
    indices = np.array([[1, -1, 1], [0, 0, 2]], np.float32)  # float blobs; 1 and 0 repeat: both updates add
    nn = builder((4, 3), (3,), (3, 3))
    nn.add_scatter("s", ["in0", "in1", "in2"], "out", axis=0, mode="ADD")
    expected = data.copy()
    for b in range(2):
        np.add.at(expected[b], indices[b].astype(int), updates[b])
    np.testing.assert_allclose(run(nn, data, indices, updates), expected, atol=1e-6)


def test_scatter_nd_and_gather_nd():
    data, updates = rand(1, 3, 4), rand(1, 2, 4)
    indices = np.array([[[2], [0]]], np.float32)
    nn = builder((3, 4), (2, 1), (2, 4))
    nn.add_scatter_nd("s", ["in0", "in1", "in2"], "out", mode="UPDATE")
    expected = data.copy()
    expected[0, [2, 0]] = updates[0]
    np.testing.assert_allclose(run(nn, data, indices, updates), expected)
    points = np.array([[[2, 1], [0, 3]]], np.float32)
    nn = builder((3, 4), (2, 2))
    nn.add_gather_nd("g", ["in0", "in1"], "out")
    np.testing.assert_allclose(run(nn, data, points), data[:, [2, 0], [1, 3]])
