"""NeuralNetwork layers of the kerasml runtime, one test per layer type, against NumPy by hand.

Specs are built directly with coremltools' `NeuralNetworkBuilder` (rank-5 layers in specification
version 1 style, rank-N layers in version 4) and run through `load_model(spec)`.
"""

from __future__ import annotations

import numpy as np
import pytest

from kerasml.errors import KerasmlError
from kerasml.runtime import UnsupportedModelError, load_model

ct = pytest.importorskip("coremltools")
from coremltools.models import datatypes  # noqa: E402
from coremltools.models.neural_network import NeuralNetworkBuilder  # noqa: E402

from runtime_harness import nn_builder as builder, run_nn as run, seeded  # noqa: E402

RNG = np.random.default_rng(7)
rand = seeded(7)


# -- references -----------------------------------------------------------------------------------
def ref_conv(x, w, bias, stride=(1, 1), dilation=(1, 1), pads=(0, 0, 0, 0), groups=1):
    x = np.pad(x, ((0, 0), (0, 0), pads[:2], pads[2:]))
    o, cg, kh, kw = w.shape
    eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    oh, ow = (x.shape[2] - eh) // stride[0] + 1, (x.shape[3] - ew) // stride[1] + 1
    out = np.zeros((x.shape[0], o, oh, ow))
    og = o // groups
    for i in range(oh):
        for j in range(ow):
            patch = x[
                :, :, i * stride[0] : i * stride[0] + eh : dilation[0], j * stride[1] : j * stride[1] + ew : dilation[1]
            ]
            for g in range(groups):
                out[:, g * og : (g + 1) * og, i, j] = np.einsum(
                    "nckl,ockl->no", patch[:, g * cg : (g + 1) * cg], w[g * og : (g + 1) * og]
                )
    return out + (0 if bias is None else bias[:, None, None])


def ref_pool(x, kind, k, s, pads, out_hw, exclude=True):
    n, c, h, w = x.shape
    pt, pb, pl, pr = pads
    out = np.zeros((n, c) + out_hw)
    for i in range(out_hw[0]):
        for j in range(out_hw[1]):
            r0, c0 = i * s[0] - pt, j * s[1] - pl
            rows = [r for r in range(r0, r0 + k[0]) if 0 <= r < h]
            cols = [q for q in range(c0, c0 + k[1]) if 0 <= q < w]
            window = x[:, :, rows][:, :, :, cols]
            if kind == "MAX":
                out[:, :, i, j] = window.max(axis=(2, 3))
            else:
                if exclude:
                    count = len(rows) * len(cols)
                else:
                    count = len([r for r in range(r0, r0 + k[0]) if -pt <= r < h + pb]) * len(
                        [q for q in range(c0, c0 + k[1]) if -pl <= q < w + pr]
                    )
                out[:, :, i, j] = window.sum(axis=(2, 3)) / count
    return out


# -- convolution ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "stride,dilation,groups,has_bias",
    [
        ((1, 1), (1, 1), 1, True),
        ((2, 1), (1, 1), 1, False),
        ((1, 1), (2, 2), 1, True),
        ((2, 2), (1, 1), 2, True),
        ((1, 1), (1, 1), 4, False),
    ],
)
def test_convolution_valid(stride, dilation, groups, has_bias):
    x, w, bias = rand(3, 4, 9, 8), rand(8, 4 // groups, 3, 2), rand(8)
    b = builder((4, 9, 8))
    b.add_convolution(
        "conv",
        4 // groups,
        8,
        3,
        2,
        *stride,
        "valid",
        groups,
        w.transpose(2, 3, 1, 0),
        bias if has_bias else None,
        has_bias,
        input_name="data",
        output_name="out",
        dilation_factors=list(dilation),
    )
    expected = ref_conv(x, w, bias if has_bias else None, stride, dilation, groups=groups)
    np.testing.assert_allclose(run(b, data=x), expected, atol=1e-4)


@pytest.mark.parametrize("mode,pads", [("BOTTOM_RIGHT_HEAVY", (0, 1, 1, 1)), ("TOP_LEFT_HEAVY", (1, 0, 1, 1))])
def test_convolution_same_padding(mode, pads):
    x, w, bias = rand(2, 2, 6, 7), rand(3, 2, 3, 3), rand(3)  # 6 rows need 1 padding row, 7 columns 2
    b = builder((2, 6, 7))
    b.add_convolution(
        "conv",
        2,
        3,
        3,
        3,
        2,
        2,
        "same",
        1,
        w.transpose(2, 3, 1, 0),
        bias,
        True,
        input_name="data",
        output_name="out",
        same_padding_asymmetry_mode=mode,
    )
    out = run(b, data=x)
    assert out.shape == (2, 3, 3, 4)  # ceil(6 / 2), ceil(7 / 2)
    np.testing.assert_allclose(out, ref_conv(x, w, bias, (2, 2), pads=pads), atol=1e-4)


def test_convolution_explicit_padding():
    x, w = rand(2, 3, 5, 5), rand(4, 3, 3, 3)
    b = builder((3, 5, 5))
    b.add_convolution(
        "conv",
        3,
        4,
        3,
        3,
        1,
        1,
        "valid",
        1,
        w.transpose(2, 3, 1, 0),
        None,
        False,
        input_name="data",
        output_name="out",
        padding_top=1,
        padding_bottom=2,
        padding_left=0,
        padding_right=1,
    )
    np.testing.assert_allclose(run(b, data=x), ref_conv(x, w, None, pads=(1, 2, 0, 1)), atol=1e-4)


def test_convolution_with_wrong_weight_count_is_rejected():
    b = builder((3, 5, 5))
    b.add_convolution(
        "conv", 3, 4, 3, 3, 1, 1, "valid", 1, rand(3, 3, 3, 4), None, False, input_name="data", output_name="out"
    )
    del b.spec.neuralNetwork.layers[0].convolution.weights.floatValue[-5:]
    with pytest.raises(KerasmlError, match="conv.*weights.*103 float values, expected 108"):
        load_model(b.spec)


# -- pooling --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["MAX", "AVERAGE"])
@pytest.mark.parametrize(
    "padding,k,s", [("VALID", (2, 2), (2, 2)), ("VALID", (3, 2), (1, 2)), ("SAME", (3, 3), (2, 2))]
)
def test_pooling(kind, padding, k, s):
    x = rand(2, 3, 7, 6)
    b = builder((3, 7, 6))
    b.add_pooling("pool", k[0], k[1], s[0], s[1], kind, padding, "data", "out")
    if padding == "VALID":
        out_hw, pads = ((7 - k[0]) // s[0] + 1, (6 - k[1]) // s[1] + 1), (0, 0, 0, 0)
    else:
        out_hw, pads = (4, 3), (1, 1, 0, 1)  # TF 'same': total 2 rows (1 + 1), 1 column (0 + 1)
    np.testing.assert_allclose(run(b, data=x), ref_pool(x, kind, k, s, pads, out_hw), atol=1e-5)


@pytest.mark.parametrize("exclude", [True, False])
def test_average_pooling_with_padding_counts_it_unless_excluded(exclude):
    x = rand(2, 2, 5, 5)
    b = builder((2, 5, 5))
    b.add_pooling(
        "pool",
        3,
        3,
        2,
        2,
        "AVERAGE",
        "VALID",
        "data",
        "out",
        exclude_pad_area=exclude,
        padding_top=1,
        padding_bottom=1,
        padding_left=1,
        padding_right=1,
    )
    np.testing.assert_allclose(
        run(b, data=x), ref_pool(x, "AVERAGE", (3, 3), (2, 2), (1, 1, 1, 1), (3, 3), exclude), atol=1e-5
    )


@pytest.mark.parametrize("kind", ["MAX", "AVERAGE"])
def test_pooling_include_last_pixel(kind):
    x = rand(2, 3, 5, 6)
    b = builder((3, 5, 6))
    b.add_pooling("pool", 2, 2, 2, 2, kind, "INCLUDE_LAST_PIXEL", "data", "out")
    pool = b.spec.neuralNetwork.layers[0].pooling
    assert pool.WhichOneof("PoolingPaddingType") == "includeLastPixel"
    out = run(b, data=x)
    assert out.shape == (2, 3, 3, 3)  # Caffe rounding: ceil((5 - 2) / 2) + 1 rows
    np.testing.assert_allclose(out, ref_pool(x, kind, (2, 2), (2, 2), (0, 0, 0, 0), (3, 3)), atol=1e-5)


@pytest.mark.parametrize("kind", ["MAX", "AVERAGE"])
def test_global_pooling(kind):
    x = rand(2, 4, 3, 5)
    b = builder((4, 3, 5))
    b.add_pooling("pool", 1, 1, 1, 1, kind, "VALID", "data", "out", is_global=True)
    expected = x.max(axis=(2, 3)) if kind == "MAX" else x.mean(axis=(2, 3))
    np.testing.assert_allclose(run(b, data=x), expected[:, :, None, None], atol=1e-5)


# -- dense and activations ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [0, 1])
def test_flatten_then_inner_product(mode):
    x, w, bias = rand(3, 2, 3, 4), rand(5, 24), rand(5)
    b = builder((2, 3, 4))
    b.add_flatten("flat", mode, "data", "flat")
    b.add_inner_product("dense", w, bias, 24, 5, True, "flat", "out")
    flat = x.reshape(3, -1) if mode == 0 else x.transpose(0, 2, 3, 1).reshape(3, -1)
    np.testing.assert_allclose(run(b, data=x), (flat @ w.T + bias)[:, :, None, None], atol=1e-5)


@pytest.mark.parametrize(
    "name,params,fn",
    [
        ("RELU", None, lambda x: np.maximum(x, 0)),
        ("LEAKYRELU", [0.3], lambda x: np.where(x >= 0, x, 0.3 * x)),
        ("SIGMOID", None, lambda x: 1 / (1 + np.exp(-x))),
        ("TANH", None, np.tanh),
        ("LINEAR", [2.0, -0.5], lambda x: 2 * x - 0.5),
        ("ELU", 1.5, lambda x: np.where(x > 0, x, 1.5 * np.expm1(x))),
        ("SOFTPLUS", None, lambda x: np.log1p(np.exp(x))),
        ("SOFTSIGN", None, lambda x: x / (1 + np.abs(x))),
    ],
)
def test_activation(name, params, fn):
    x = rand(4, 3, 2, 2)
    b = builder((3, 2, 2))
    b.add_activation("act", name, "data", "out", params=params)
    np.testing.assert_allclose(run(b, data=x), fn(x), atol=1e-5)


def test_activation_not_implemented_names_the_layer():
    b = builder((3, 2, 2))
    b.add_activation("fancy", "RELU", "data", "out")
    b.spec.neuralNetwork.layers[-1].activation.ClearField("ReLU")  # no function named at all
    with pytest.raises(UnsupportedModelError, match="layer 'fancy' \\(activation\\).*unset activation"):
        load_model(b.spec)


def test_softmax_over_channels():
    x = rand(3, 5, 1, 1)
    b = builder((5, 1, 1))
    b.add_softmax("soft", "data", "out")
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(run(b, data=x), e / e.sum(axis=1, keepdims=True), atol=1e-6)


# -- shapes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [0, 1])
def test_reshape(mode):
    x = rand(2, 4, 3, 2)
    b = builder((4, 3, 2))
    b.add_reshape("reshape", "data", "out", (6, 2, 2), mode)
    if mode == 0:
        expected = x.reshape(2, 6, 2, 2)
    else:  # channel last: through (H, W, C) order
        expected = x.transpose(0, 2, 3, 1).reshape(2, 2, 2, 6).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(run(b, data=x), expected)


def test_permute():
    x = rand(2, 4, 3, 5)
    b = builder((4, 3, 5))
    b.add_permute("permute", (0, 3, 1, 2), "data", "out")  # (C, H, W) -> (W, C, H)
    np.testing.assert_allclose(run(b, data=x), x.transpose(0, 3, 1, 2))


def test_batchnorm():
    x, gamma, beta, mean, var = rand(3, 4, 2, 2), rand(4), rand(4), rand(4), np.abs(rand(4)) + 0.1
    b = builder((4, 2, 2))
    b.add_batchnorm("bn", 4, gamma, beta, mean, var, "data", "out", epsilon=1e-3)
    c = lambda v: v[:, None, None]  # noqa: E731
    np.testing.assert_allclose(run(b, data=x), c(gamma) * (x - c(mean)) / np.sqrt(c(var) + 1e-3) + c(beta), atol=1e-5)


@pytest.mark.parametrize("mode,fn", [("ADD", np.add), ("MULTIPLY", np.multiply)])
def test_add_and_multiply(mode, fn):
    x, y = rand(2, 3, 4, 4), rand(2, 3, 4, 4)
    b = builder((3, 4, 4), inputs=("a", "b"))
    b.add_elementwise("two", ["a", "b"], "two", mode)
    b.add_elementwise("out", ["two"], "out", mode, alpha=2.5)
    np.testing.assert_allclose(run(b, a=x, b=y), fn(fn(x, y), 2.5), atol=1e-5)


def test_concat_over_channels():
    x, y = rand(2, 3, 4, 4), rand(2, 3, 4, 4)
    b = builder((3, 4, 4), inputs=("a", "b"))
    b.add_elementwise("out", ["a", "b"], "out", "CONCAT")
    np.testing.assert_allclose(run(b, a=x, b=y), np.concatenate([x, y], axis=1))


@pytest.mark.parametrize("kind,np_mode", [("constant", "constant"), ("reflection", "reflect"), ("replication", "edge")])
def test_padding(kind, np_mode):
    x = rand(2, 3, 4, 5)
    b = builder((3, 4, 5))
    b.add_padding(
        "pad", left=1, right=2, top=2, bottom=1, value=0.5, input_name="data", output_name="out", padding_type=kind
    )
    extra = {"constant_values": 0.5} if np_mode == "constant" else {}
    np.testing.assert_allclose(run(b, data=x), np.pad(x, ((0, 0), (0, 0), (2, 1), (1, 2)), mode=np_mode, **extra))


def test_upsample_nearest():
    x = rand(2, 3, 2, 3)
    b = builder((3, 2, 3))
    b.add_upsample("up", 2, 3, "data", "out")
    np.testing.assert_allclose(run(b, data=x), x.repeat(2, axis=2).repeat(3, axis=3))


def test_upsample_bilinear_align_corners():
    x = rand(1, 1, 2, 2)
    b = builder((1, 2, 2))
    b.add_upsample("up", 2, 2, "data", "out", mode="BILINEAR", linear_upsample_mode="ALIGN_CORNERS_TRUE")
    out = run(b, data=x)
    assert out.shape == (1, 1, 4, 4)
    np.testing.assert_allclose(out[0, 0, [0, 0, 3, 3], [0, 3, 0, 3]], x[0, 0].ravel()[[0, 1, 2, 3]], atol=1e-6)
    np.testing.assert_allclose(out[0, 0, 0, 1], x[0, 0, 0, 0] * 2 / 3 + x[0, 0, 0, 1] / 3, atol=1e-6)


# -- rank-N layers (specification 4) --------------------------------------------------------------
def test_rank_n_dense_head():
    """The layers coremltools writes for Keras' Flatten + Dense: transpose, reshape, matmul, softmax."""
    x, w, bias = rand(3, 4, 2, 2), rand(16, 5), rand(5)
    b = builder((1, 4, 2, 2), rank_n=True)
    b.add_transpose("t", (0, 2, 3, 1), "data", "t")
    b.add_reshape_static("r", "t", "r", (1, 16))
    b.add_batched_mat_mul("mm", ["r"], "mm", weight_matrix_rows=16, weight_matrix_columns=5, W=w, bias=bias)
    b.add_softmax_nd("soft", "mm", "out", axis=-1)
    logits = x.transpose(0, 2, 3, 1).reshape(3, 1, 16) @ w + bias
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(run(b, data=x[:, None]), e / e.sum(axis=-1, keepdims=True), atol=1e-6)


def test_rank_n_shape_layers():
    x, y = rand(2, 3, 4), rand(2, 3, 4)
    b = builder((3, 4), rank_n=True, inputs=("a", "b"))
    b.add_add_broadcastable("sum", ["a", "b"], "sum")
    b.add_expand_dims("e", "sum", "e", axes=[0])
    b.add_concat_nd("c", ["e", "e"], "c", axis=0)
    b.add_flatten_to_2d("f", "c", "f", axis=1)
    b.add_reduce_mean("m", "f", "m", axes=[-1], keepdims=True)
    b.add_squeeze("out", "m", "out", axes=[-1])
    expected = np.concatenate([(x + y)[:, None]] * 2, axis=1).reshape(2, 2, 12).mean(axis=-1)
    np.testing.assert_allclose(run(b, a=x, b=y), expected, atol=1e-6)


def test_rank_n_tile_and_transpose():
    x = rand(2, 1, 3, 2)
    b = builder((1, 3, 2), rank_n=True)
    b.add_tile("tile", "data", "tile", reps=[2, 1, 3])
    b.add_transpose("out", (2, 0, 1), "tile", "out")
    np.testing.assert_allclose(run(b, data=x), np.tile(x, (1, 2, 1, 3)).transpose(0, 3, 1, 2))


# -- weights, images, classifiers, old specs ------------------------------------------------------
def _dense_model():
    w, bias = rand(6, 12), rand(6)
    b = builder((12, 1, 1))
    b.add_inner_product("dense", w, bias, 12, 6, True, "data", "out")
    return b.spec


@pytest.mark.parametrize(
    "nbits,mode", [(16, "linear"), (8, "linear"), (4, "linear"), (4, "linear_lut"), (2, "linear_lut")]
)
def test_quantized_weights_decode_like_coremltools(nbits, mode):
    from coremltools.models.neural_network import quantization_utils as qu

    spec = _dense_model()
    quantized = qu.quantize_weights(
        ct.models.MLModel(spec, skip_model_load=True), nbits, quantization_mode=mode
    ).get_spec()
    model = load_model(quantized)
    assert (
        model.weight_precision == {16: "float16", 8: "int8", 4: "int4" if mode == "linear" else "lut", 2: "lut"}[nbits]
    )
    reference = type(quantized)()
    reference.CopyFrom(quantized)
    w = reference.neuralNetwork.layers[0].innerProduct.weights
    if nbits == 16:
        values = np.frombuffer(w.float16Value, np.float16).astype(np.float32)
    elif "lut" in mode:  # coremltools' own LUT dequantizer fails with NumPy 2, so unpack by hand
        indices = qu._unpack_to_bytes(np.frombuffer(w.rawValue, np.uint8), 72, nbits)
        values = np.asarray(w.quantization.lookupTableQuantization.floatValue, np.float32)[indices]
    else:
        qu._dequantize_nn_spec(reference.neuralNetwork)
        values = np.asarray(w.floatValue, np.float32)
    w.Clear()
    w.floatValue.extend(values)
    x = rand(5, 12, 1, 1)
    got = model.predict({"data": x})["out"]
    np.testing.assert_allclose(got, load_model(reference).predict({"data": x})["out"], atol=1e-5)
    if nbits >= 8:
        np.testing.assert_allclose(got, load_model(spec).predict({"data": x})["out"], atol=0.1)


def _image_classifier(colour: str, spec_version: int):
    """Image → scaler → global average pool → softmax, as a NeuralNetworkClassifier."""
    channels = 1 if colour == "GRAYSCALE" else 3
    b = NeuralNetworkBuilder([("image", datatypes.Array(channels, 4, 5))], [("probs", None)], mode="classifier")
    b.add_pooling("gap", 1, 1, 1, 1, "AVERAGE", "VALID", "image", "gap", is_global=True)
    b.add_inner_product("dense", np.eye(3, channels, dtype=np.float32), None, channels, 3, False, "gap", "logits")
    b.add_softmax("soft", "logits", "probs")
    b.set_class_labels(["cat", "dog", "emu"], predicted_feature_name="label", prediction_blob="probs")
    b.set_pre_processing_parameters(
        image_input_names=["image"],
        is_bgr=colour == "BGR",
        red_bias=-1.0,
        green_bias=-2.0,
        blue_bias=-3.0,
        gray_bias=-0.5,
        image_scale=1 / 255,
    )
    spec = b.spec
    image = spec.description.input[0].type
    image.imageType.width, image.imageType.height = 5, 4
    image.imageType.colorSpace = {"GRAYSCALE": 10, "RGB": 20, "BGR": 30}[colour]
    spec.specificationVersion = spec_version
    return spec


@pytest.mark.parametrize("colour", ["GRAYSCALE", "RGB", "BGR"])
def test_image_preprocessing_and_classifier_outputs(colour):
    model = load_model(_image_classifier(colour, 1))
    assert (model.spec_version, model.model_type, model.labels) == (1, "neuralNetworkClassifier", ["cat", "dog", "emu"])
    assert model.image.colour == colour.lower() and model.image.scale == pytest.approx(1 / 255)
    expected_bias = {"GRAYSCALE": (-0.5,), "RGB": (-1.0, -2.0, -3.0), "BGR": (-3.0, -2.0, -1.0)}[colour]
    assert model.image.bias == expected_bias
    pixels = RNG.integers(0, 256, (4, 4, 5) + ((3,) if colour != "GRAYSCALE" else ())).astype(np.uint8)
    rgb = pixels.reshape(4, 4, 5, -1).astype(np.float32)
    channels = rgb[..., ::-1] if colour == "BGR" else rgb  # the model's own channel order
    means = channels.mean(axis=(1, 2)) / 255 + np.array(expected_bias)
    logits = means @ np.eye(3, channels.shape[-1]).T
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_probabilities(pixels, batch_size=3), expected, atol=1e-6)
    out = model.predict({"image": pixels})
    assert out["label"] == [["cat", "dog", "emu"][i] for i in expected.argmax(axis=1)]
    assert out["probs"][0] == pytest.approx(dict(zip(["cat", "dog", "emu"], expected[0])), abs=1e-6)


def test_wrong_image_size_and_channels_are_clear_errors():
    model = load_model(_image_classifier("RGB", 1))
    with pytest.raises(KerasmlError, match="4x5 images, got 5x4"):
        model.predict_probabilities(np.zeros((1, 5, 4, 3)))
    with pytest.raises(KerasmlError, match="rgb images \\(3 channels\\), got 1"):
        model.predict_probabilities(np.zeros((1, 4, 5)))


def test_unsupported_layer_names_layer_and_type():
    b = builder((3, 4, 4))
    b.add_random_normal_like("norm", "data", "out")
    with pytest.raises(UnsupportedModelError, match="layer 'norm' has type 'randomNormalLike'"):
        load_model(b.spec)


def test_scale_bias_crop_unary_and_merges():
    x, y = rand(2, 3, 5, 6), rand(2, 3, 5, 6)
    gamma, beta = rand(3), rand(3)
    b = builder((3, 5, 6), inputs=("a", "b"))
    b.add_scale("scale", gamma, beta, True, "a", "scaled", shape_scale=[3], shape_bias=[3])
    b.add_bias("bias", np.float32([0.5]), "scaled", "biased", shape_bias=[1])
    b.add_crop("crop", 1, 2, 0, 1, [0, 0], ["biased"], "cropped")
    b.add_unary("abs", "cropped", "abs", mode="abs", shift=1.0, scale=2.0)
    b.add_crop("crop_b", 1, 2, 0, 1, [0, 0], ["b"], "b_cropped")
    b.add_elementwise("avg", ["abs", "b_cropped"], "avg", "AVE")
    b.add_elementwise("out", ["avg", "b_cropped"], "out", "MAX")
    c = lambda v: v[:, None, None]  # noqa: E731
    crop = lambda v: v[..., 0:4, 1:4]  # noqa: E731  left=1, right=2, top=0, bottom=1
    scaled = np.abs(2 * crop(x * c(gamma) + c(beta) + 0.5) + 1)
    expected = np.maximum((scaled + crop(y)) / 2, crop(y))
    np.testing.assert_allclose(run(b, a=x, b=y), expected, atol=1e-5)


def test_fused_relu_gives_the_same_results_as_separate_layers():
    """The engine applies a ReLU inside the convolution or max pooling it follows; results must not change,
    also when the ReLU's input or output is read by another layer or is a network output."""
    x, w = rand(2, 2, 8, 8), rand(3, 2, 3, 3)
    b = NeuralNetworkBuilder([("data", datatypes.Array(2, 8, 8))], [("out", None), ("relu2", None)])
    b.add_convolution(
        "c1", 2, 3, 3, 3, 1, 1, "valid", 1, w.transpose(2, 3, 1, 0), None, False, input_name="data", output_name="c1"
    )
    b.add_activation("relu1", "RELU", "c1", "relu1")
    b.add_pooling("pool", 2, 2, 2, 2, "MAX", "VALID", "relu1", "pool")
    b.add_convolution(
        "c2", 2, 3, 3, 3, 1, 1, "valid", 1, w.transpose(2, 3, 1, 0), None, False, input_name="data", output_name="c2"
    )
    b.add_activation("relu2", "RELU", "c2", "relu2")  # a network output as well as an input below
    b.add_pooling("pool2", 2, 2, 2, 2, "MAX", "VALID", "relu2", "pool2")
    b.add_elementwise("out", ["pool", "pool2"], "out", "ADD")
    conv = np.maximum(ref_conv(x, w, None), 0)
    pooled = ref_pool(conv, "MAX", (2, 2), (2, 2), (0, 0, 0, 0), (3, 3))
    out = load_model(b.spec).predict({"data": x})
    np.testing.assert_allclose(out["out"], 2 * pooled, atol=1e-5)
    np.testing.assert_allclose(out["relu2"], conv, atol=1e-5)
