"""NeuralNetwork layers that modern Keras models need, built with coremltools' `NeuralNetworkBuilder`
from the weights of a tiny Keras layer and compared with that layer (fp32, max |Δ| ≤ 1e-5):
deconvolution, upsampling and resizing, the recurrent layers, gelu, layer normalization, PReLU."""

from __future__ import annotations

import numpy as np
import pytest

from kerasml.runtime import UnsupportedModelError, load_model

ct = pytest.importorskip("coremltools")
keras = pytest.importorskip("keras")
from coremltools.models import datatypes  # noqa: E402
from coremltools.models.neural_network import NeuralNetworkBuilder  # noqa: E402

from runtime_harness import nn_builder as builder, run_nn as predict, seeded  # noqa: E402

ATOL = 1e-5
rand = seeded(5)


def nhwc(x):
    return x.transpose(0, 2, 3, 1)


def nchw(x):
    return np.asarray(x).transpose(0, 3, 1, 2)


# -- deconvolution ----------------------------------------------------------------------------------
@pytest.mark.parametrize("strides,padding,kernel", [((2, 2), "valid", (3, 3)), ((2, 2), "same", (3, 3)),
                                                     ((2, 1), "same", (4, 3)), ((3, 2), "valid", (2, 2))])
def test_deconvolution_matches_conv2d_transpose(strides, padding, kernel):
    x = rand(2, 3, 5, 4)
    layer = keras.layers.Conv2DTranspose(6, kernel, strides=strides, padding=padding)
    expected = nchw(layer(nhwc(x)))
    w, bias = layer.get_weights()  # (kH, kW, C_out, C_in); the builder wants (kH, kW, C_in, C_out)
    nn = builder((3, 5, 4))
    nn.add_convolution(
        "deconv", 3, 6, kernel[0], kernel[1], strides[0], strides[1], padding, 1, w.transpose(0, 1, 3, 2), bias,
        True, is_deconv=True, output_shape=list(expected.shape[2:]), input_name="data", output_name="out",
    )
    np.testing.assert_allclose(predict(nn, x), expected, atol=ATOL)


def test_deconvolution_valid_without_output_shape_follows_core_ml():
    # Core ML: H_out = (H_in - 1) * stride + kernel - padding; Keras would add a zero row when the stride
    # exceeds the kernel (its converter then writes the output shape, tested above)
    x, w = rand(1, 1, 2, 2), rand(2, 2, 1, 1)
    nn = builder((1, 2, 2))
    nn.add_convolution("deconv", 1, 1, 2, 2, 3, 3, "valid", 1, w, None, False, is_deconv=True,
                       input_name="data", output_name="out")
    out = predict(nn, x)
    assert out.shape == (1, 1, 5, 5)
    np.testing.assert_allclose(out[0, 0, 3:, 3:], x[0, 0, 1, 1] * w[:, :, 0, 0], atol=1e-6)
    assert not out[0, 0, 2].any() and not out[0, 0, :, 2].any()


def test_deconvolution_output_shape_and_groups():
    x, w, bias = rand(1, 4, 3, 3), rand(2, 2, 4, 3), rand(6)  # (kH, kW, C_in, C_out / groups), 2 groups
    nn = builder((4, 3, 3))
    nn.add_convolution(
        "deconv", 4, 6, 2, 2, 2, 2, "valid", 2, w, bias, True, is_deconv=True, output_shape=[7, 5],
        input_name="data", output_name="out",
    )
    out = predict(nn, x)
    full = np.zeros((1, 6, 6, 6), np.float32)  # (3 - 1) * 2 + 2 = 6 rows; the output shape pads one more
    kernel = w.transpose(2, 3, 0, 1)  # (C_in, C_out / groups, kH, kW)
    for g in range(2):
        for ci in range(2 * g, 2 * g + 2):
            for i in range(3):
                for j in range(3):
                    full[0, 3 * g : 3 * g + 3, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2] += x[0, ci, i, j] * kernel[ci]
    expected = np.zeros((1, 6, 7, 5), np.float32)
    expected[:, :, :6, :5] = full[:, :, :6, :5]
    np.testing.assert_allclose(out, expected + bias[:, None, None], atol=ATOL)


# -- upsample / resize / crop -----------------------------------------------------------------------
@pytest.mark.parametrize("size", [(7, 10), (3, 5)])
def test_fractional_bilinear_upsample_matches_keras_resizing(size):
    x = rand(2, 3, 4, 6)
    expected = nchw(keras.layers.Resizing(*size, interpolation="bilinear")(nhwc(x)))
    nn = builder((3, 4, 6))
    nn.add_upsample("up", size[0] / 4, size[1] / 6, "data", "out", mode="BILINEAR",
                    linear_upsample_mode="ALIGN_CORNERS_FALSE")
    np.testing.assert_allclose(predict(nn, x), expected, atol=ATOL)


def test_bilinear_upsampling2d_matches_keras():
    x = rand(1, 2, 3, 4)
    expected = nchw(keras.layers.UpSampling2D((2, 3), interpolation="bilinear")(nhwc(x)))
    nn = builder((2, 3, 4))
    nn.add_upsample("up", 2, 3, "data", "out", mode="BILINEAR", linear_upsample_mode="ALIGN_CORNERS_FALSE")
    np.testing.assert_allclose(predict(nn, x), expected, atol=ATOL)


def test_upsample_default_and_align_corners_by_hand():
    x = np.array([0, 1, 3], np.float32).reshape(1, 1, 1, 3)
    for mode, expected in [("DEFAULT", [0, 0.5, 1, 2, 3, 3]), ("ALIGN_CORNERS_TRUE", [0, 0.4, 0.8, 1.4, 2.2, 3])]:
        nn = builder((1, 1, 3))
        nn.add_upsample("up", 1, 2, "data", "out", mode="BILINEAR", linear_upsample_mode=mode)
        np.testing.assert_allclose(predict(nn, x)[0, 0, 0], expected, atol=1e-6)


def test_fractional_nearest_upsample_is_refused():
    nn = builder((1, 1, 4))
    nn.add_upsample("up", 2, 2, "data", "out", mode="NN")
    nn.spec.neuralNetwork.layers[0].upsample.ClearField("scalingFactor")  # Core ML's validator rejects this too
    nn.spec.neuralNetwork.layers[0].upsample.fractionalScalingFactor.extend([1.0, 1.5])
    with pytest.raises(UnsupportedModelError, match="fractional factors"):
        load_model(nn.spec)


@pytest.mark.parametrize("mode,expected", [
    ("STRICT_ALIGN_ENDPOINTS_MODE", [0, 1.5, 3]), ("ALIGN_ENDPOINTS_MODE", [0, 1.5, 3]),
    ("UPSAMPLE_MODE", [0, 4 / 3, 8 / 3]), ("ROI_ALIGN_MODE", [0.5, 1.5, 2.5]),
])
def test_resize_bilinear_sampling_modes(mode, expected):
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 1, 4)  # value = column, so outputs are the grid
    nn = builder((1, 1, 4))
    nn.add_resize_bilinear("rb", "data", "out", target_height=1, target_width=3, mode=mode)
    np.testing.assert_allclose(predict(nn, x)[0, 0, 0], expected, atol=1e-6)


def test_crop_resize_by_hand():
    # the example of coremltools' crop_resize tests: box rows/columns 1..2 of a 4x4 ramp
    x = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 1, 1, 4, 4)
    nn = NeuralNetworkBuilder([("data", datatypes.Array(1, 1, 1, 4, 4)), ("roi", datatypes.Array(1, 1, 4, 1, 1))],
                              [("out", None)], disable_rank5_shape_mapping=True)
    nn.add_crop_resize("cr", ["data", "roi"], "out", target_height=4, target_width=4, mode="ALIGN_ENDPOINTS_MODE")
    roi = np.array([1, 1, 2, 2], np.float32).reshape(1, 1, 1, 4, 1, 1)
    out = load_model(nn.spec).predict({"data": x, "roi": roi})["out"]
    rows = np.linspace(1, 2, 4)
    np.testing.assert_allclose(out[0, 0, 0, 0], 4 * rows[:, None] + rows[None, :] + 1, atol=1e-5)


# -- recurrent --------------------------------------------------------------------------------------
def _sequence_input(x):
    """(batch, steps, features) Keras input → one prediction of shape [Seq, Batch, C, 1, 1]."""
    return x.transpose(1, 0, 2)[None, :, :, :, None, None]


def _recurrent_builder(steps, batch, features, outputs=("out",)):
    return NeuralNetworkBuilder([("data", datatypes.Array(steps, batch, features, 1, 1))],
                                [(o, None) for o in outputs], disable_rank5_shape_mapping=True)


def _lstm_gates(kernel, recurrent, bias):
    """Keras' (I, 4H) blocks i, f, c, o → coremltools' lists in order i, f, o, z."""
    w_x, w_h, b = np.split(kernel.T, 4), np.split(recurrent.T, 4), np.split(bias, 4)
    order = [0, 1, 3, 2]
    return [w_x[i] for i in order], [w_h[i] for i in order], [b[i] for i in order]


@pytest.mark.parametrize("return_sequences,go_backwards", [(True, False), (False, False), (True, True)])
def test_unidirectional_lstm_matches_keras(return_sequences, go_backwards):
    batch, steps, features, hidden = 2, 5, 3, 4
    x = rand(batch, steps, features)
    layer = keras.layers.LSTM(hidden, return_sequences=return_sequences, go_backwards=go_backwards)
    expected = np.asarray(layer(x))
    w_x, w_h, b = _lstm_gates(*layer.get_weights())
    nn = _recurrent_builder(steps, batch, features, outputs=("out", "h", "c"))
    nn.add_unilstm("lstm", w_h, w_x, b, hidden, features, ["data"], ["out", "h", "c"],
                   output_all=return_sequences, reverse_input=go_backwards)
    out = load_model(nn.spec).predict({"data": _sequence_input(x)})
    got = out["out"][0, ..., 0, 0]  # (steps or 1, batch, hidden)
    np.testing.assert_allclose(got.transpose(1, 0, 2) if return_sequences else got[0], expected, atol=ATOL)
    last = expected[:, -1] if return_sequences else expected
    np.testing.assert_allclose(out["h"][0, 0, :, :, 0, 0], last, atol=ATOL)


def test_bidirectional_lstm_matches_keras():
    batch, steps, features, hidden = 2, 4, 3, 5
    x = rand(batch, steps, features)
    layer = keras.layers.Bidirectional(keras.layers.LSTM(hidden, return_sequences=True))
    expected = np.asarray(layer(x))
    weights = layer.get_weights()
    fwd, bwd = _lstm_gates(*weights[:3]), _lstm_gates(*weights[3:])
    nn = _recurrent_builder(steps, batch, features)
    nn.add_bidirlstm("bilstm", fwd[1], fwd[0], fwd[2], bwd[1], bwd[0], bwd[2], hidden, features,
                     ["data"], ["out"], output_all=True)
    got = predict(nn, _sequence_input(x))[0, ..., 0, 0]
    np.testing.assert_allclose(got.transpose(1, 0, 2), expected, atol=ATOL)


def test_gru_matches_keras():
    batch, steps, features, hidden = 3, 4, 2, 5
    x = rand(batch, steps, features)
    layer = keras.layers.GRU(hidden, return_sequences=True, reset_after=False)  # Core ML's GRU form
    expected = np.asarray(layer(x))
    kernel, recurrent, bias = layer.get_weights()  # blocks z, r, h
    nn = _recurrent_builder(steps, batch, features)
    nn.add_gru("gru", list(np.split(recurrent.T, 3)), list(np.split(kernel.T, 3)), list(np.split(bias, 3)),
               hidden, features, ["data"], ["out"], output_all=True,
               inner_activation="SIGMOID")
    got = predict(nn, _sequence_input(x))[0, ..., 0, 0]
    np.testing.assert_allclose(got.transpose(1, 0, 2), expected, atol=ATOL)


def test_simple_rnn_matches_keras():
    batch, steps, features, hidden = 2, 6, 3, 4
    x = rand(batch, steps, features)
    layer = keras.layers.SimpleRNN(hidden)
    expected = np.asarray(layer(x))
    kernel, recurrent, bias = layer.get_weights()
    nn = _recurrent_builder(steps, batch, features)
    nn.add_simple_rnn("rnn", recurrent.T, kernel.T, bias, hidden, features, "TANH", ["data"], ["out"])
    np.testing.assert_allclose(predict(nn, _sequence_input(x))[0, 0, :, :, 0, 0], expected, atol=ATOL)


def test_lstm_initial_states_and_forget_bias_by_hand():
    hidden, features = 2, 1
    x = np.ones((1, 1, 1, features, 1, 1), np.float32)
    zeros = [np.zeros((hidden, features), np.float32)] * 4
    nn = NeuralNetworkBuilder(
        [("data", datatypes.Array(1, 1, features, 1, 1)), ("h0", datatypes.Array(1, 1, hidden, 1, 1)),
         ("c0", datatypes.Array(1, 1, hidden, 1, 1))], [("out", None)], disable_rank5_shape_mapping=True)
    nn.add_unilstm("lstm", [np.zeros((hidden, hidden), np.float32)] * 4, zeros, None, hidden, features,
                   ["data", "h0", "c0"], ["out"], forget_bias=True)
    c0 = np.array([0.5, -2.0], np.float32).reshape(1, 1, 1, hidden, 1, 1)
    out = load_model(nn.spec).predict({"data": x, "h0": np.zeros_like(c0), "c0": c0})["out"]
    # every pre-activation is 0 except the forget gate's 1: c = sigmoid(1) c0 + 0.5 tanh(0), h = 0.5 tanh(c)
    c = 1 / (1 + np.exp(-1.0)) * np.array([0.5, -2.0])
    np.testing.assert_allclose(out[0, 0, 0, :, 0, 0], 0.5 * np.tanh(c), atol=1e-6)


# -- gelu, layer norm, activations ------------------------------------------------------------------
@pytest.mark.parametrize("mode,approximate", [("EXACT", False), ("TANH_APPROXIMATION", True)])
def test_gelu_layer_matches_keras(mode, approximate):
    x = rand(2, 3, 4, 5, scale=3)
    nn = builder((3, 4, 5), rank_n=True)
    nn.add_gelu("gelu", "data", "out", mode=mode)
    np.testing.assert_allclose(predict(nn, x), keras.activations.gelu(x, approximate=approximate), atol=ATOL)


def test_layer_normalization_matches_keras():
    x = rand(2, 4, 6)
    layer = keras.layers.LayerNormalization(epsilon=1e-3)
    layer.build(x.shape)
    layer.set_weights([rand(6), rand(6)])
    gamma, beta = layer.get_weights()
    nn = builder((4, 6), rank_n=True)
    nn.add_layer_normalization("ln", "data", "out", [6], gamma, beta, eps=1e-3)
    np.testing.assert_allclose(predict(nn, x), layer(x), atol=ATOL)


def test_prelu_matches_keras():
    x = rand(2, 3, 4, 4)
    layer = keras.layers.PReLU(shared_axes=[1, 2])
    layer.build((None, 4, 4, 3))
    alpha = rand(1, 1, 3)
    layer.set_weights([alpha])
    nn = builder((3, 4, 4))
    nn.add_activation("prelu", "PRELU", "data", "out", params=alpha.reshape(3))
    np.testing.assert_allclose(predict(nn, x), nchw(layer(nhwc(x))), atol=ATOL)


def test_batched_matmul_transposes_match_numpy():
    a, b = rand(2, 3, 4, 5), rand(2, 3, 6, 4)
    nn = NeuralNetworkBuilder([("a", datatypes.Array(3, 4, 5)), ("b", datatypes.Array(3, 6, 4))], [("out", None)],
                              disable_rank5_shape_mapping=True)
    nn.add_batched_mat_mul("mm", ["a", "b"], "out", transpose_a=True, transpose_b=True)
    out = load_model(nn.spec).predict({"a": a, "b": b})["out"]
    np.testing.assert_allclose(out, np.swapaxes(a, -1, -2) @ np.swapaxes(b, -1, -2), atol=ATOL)
