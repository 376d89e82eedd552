"""kerasml.runtime.kernels against Keras layers with the same weights (fp32, max |Δ| ≤ 1e-5) and,
where Keras has no equivalent, against the Core ML spec's formulas worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from kerasml.runtime import UnsupportedModelError, kernels

keras = pytest.importorskip("keras")

from runtime_harness import seeded  # noqa: E402

RNG = np.random.default_rng(11)
TANH_ACTS = (kernels.sigmoid, np.tanh, np.tanh)
rand = seeded(11)


def keras_call(layer, x, **kwargs) -> np.ndarray:
    return np.asarray(layer(x, **kwargs))


@pytest.mark.parametrize("go_backwards", [False, True])
def test_lstm_matches_keras(go_backwards):
    steps, batch, features, hidden = 5, 3, 4, 6
    x = rand(batch, steps, features)
    layer = keras.layers.LSTM(hidden, return_sequences=True, return_state=True, go_backwards=go_backwards)
    layer.build((None, steps, features))
    layer.set_weights([rand(features, 4 * hidden), rand(hidden, 4 * hidden), rand(4 * hidden)])
    seq, h_k, c_k = (np.asarray(t) for t in layer(x))
    kernel, recurrent, bias = layer.get_weights()  # Keras stacks gates i, f, c (= z), o along the columns
    xs = x.transpose(1, 0, 2)[::-1] if go_backwards else x.transpose(1, 0, 2)
    zeros = np.zeros((batch, hidden), np.float32)
    out, h, c = kernels.lstm(xs, kernel.T, recurrent.T, bias, zeros, zeros, acts=TANH_ACTS)
    np.testing.assert_allclose(out.transpose(1, 0, 2), seq, atol=1e-5)
    np.testing.assert_allclose(h, h_k, atol=1e-5)
    np.testing.assert_allclose(c, c_k, atol=1e-5)


def test_lstm_peephole_coupled_and_clips_by_hand():
    x, hidden = rand(3, 1, 2), 2
    w_x, w_h, b, p = rand(4 * hidden, 2), rand(4 * hidden, hidden), rand(4 * hidden), rand(3 * hidden)
    h = c = np.zeros((1, hidden), np.float32)
    expected = []
    for t in range(3):  # NeuralNetwork.proto's LSTM equations, one step at a time
        z = w_x @ x[t, 0] + w_h @ h[0] + b
        zi, zf, zz, zo = np.split(z, 4)
        i = kernels.sigmoid(np.clip(zi + p[:2] * c[0], -0.5, 0.5))
        c = c * (1 - i) + i * np.tanh(np.clip(zz, -0.5, 0.5))
        c = np.clip(c, -0.3, 0.3)
        o = kernels.sigmoid(np.clip(zo + p[4:] * c[0], -0.5, 0.5))
        h = o * np.tanh(c)
        expected.append(h[0])
    out, h_last, c_last = kernels.lstm(
        x, w_x, w_h, b, np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32),
        acts=TANH_ACTS, peephole=p, gate_clip=0.5, cell_clip=0.3, coupled=True,
    )
    np.testing.assert_allclose(out[:, 0], np.array(expected), atol=1e-6)
    np.testing.assert_allclose(c_last, c, atol=1e-6)


@pytest.mark.parametrize("reset_after", [False, True])
def test_gru_matches_keras(reset_after):
    steps, batch, features, hidden = 4, 2, 3, 5
    x = rand(batch, steps, features)
    layer = keras.layers.GRU(hidden, return_sequences=True, reset_after=reset_after)
    layer.build((None, steps, features))
    bias_shape = (2, 3 * hidden) if reset_after else (3 * hidden,)
    layer.set_weights([rand(features, 3 * hidden), rand(hidden, 3 * hidden), rand(*bias_shape)])
    expected = keras_call(layer, x)
    kernel, recurrent, bias = layer.get_weights()  # gates z, r, h (= o)
    b_x, b_h = (bias[0], bias[1]) if reset_after else (bias, None)
    out, _ = kernels.gru(
        x.transpose(1, 0, 2), kernel.T, recurrent.T, b_x, np.zeros((batch, hidden), np.float32),
        acts=(kernels.sigmoid, np.tanh), recurrent_bias=b_h, reset_after=reset_after,
    )
    np.testing.assert_allclose(out.transpose(1, 0, 2), expected, atol=1e-5)


def test_simple_rnn_matches_keras():
    x = rand(2, 6, 3)
    layer = keras.layers.SimpleRNN(4, return_sequences=True, activation="relu")
    layer.build((None, 6, 3))
    layer.set_weights([rand(3, 4), rand(4, 4, scale=0.5), rand(4)])
    kernel, recurrent, bias = layer.get_weights()
    out, _ = kernels.rnn(
        x.transpose(1, 0, 2), kernel.T, recurrent.T, bias, np.zeros((2, 4), np.float32),
        act=lambda v: np.maximum(v, 0),
    )
    np.testing.assert_allclose(out.transpose(1, 0, 2), keras_call(layer, x), atol=1e-5)


def test_reorder_gates():
    stacked = np.repeat(np.arange(4, dtype=np.float32), 2)[:, None]  # blocks 0, 1, 2, 3 in "ifoz"
    np.testing.assert_array_equal(kernels.reorder_gates(stacked, "ifoz", "ifzo")[:, 0], [0, 0, 1, 1, 3, 3, 2, 2])


@pytest.mark.parametrize(
    "strides,padding,dilation,output_padding",
    [((2, 2), "valid", (1, 1), None), ((2, 1), "same", (1, 1), None), ((3, 2), "same", (1, 1), None),
     ((2, 2), "valid", (1, 1), (1, 1))],
)
def test_conv_transpose_matches_keras(strides, padding, dilation, output_padding):
    x = rand(2, 5, 4, 3)  # NHWC for Keras
    layer = keras.layers.Conv2DTranspose(
        4, (3, 2), strides=strides, padding=padding, dilation_rate=dilation, output_padding=output_padding
    )
    expected = keras_call(layer, x).transpose(0, 3, 1, 2)
    kernel, bias = layer.get_weights()  # (kH, kW, C_out, C_in)
    w = kernel.transpose(3, 2, 0, 1)
    full = kernels.conv_transpose2d(x.transpose(0, 3, 1, 2), w, bias, stride=strides, dilation=dilation)
    if padding == "same":  # TensorFlow centres the output in the full result; the odd row is cut from the end
        crops = [max(k + (k - 1) * (d - 1) - s, 0) for k, d, s in zip((3, 2), dilation, strides)]
        crop = (crops[0] // 2, crops[0] - crops[0] // 2, crops[1] // 2, crops[1] - crops[1] // 2)
        out = kernels.conv_transpose2d(
            x.transpose(0, 3, 1, 2), w, bias, stride=strides, dilation=dilation, crop=crop,
            out_size=expected.shape[2:],
        )
    else:
        out = kernels.conv_transpose2d(
            x.transpose(0, 3, 1, 2), w, bias, stride=strides, dilation=dilation, out_size=expected.shape[2:]
        )
        assert output_padding or full.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_conv_transpose_dilation_is_a_kernel_with_holes():
    # TensorFlow's CPU kernels refuse dilated transposed convolutions: compare with the same
    # kernel spread out by hand (zeros between its taps), which is what dilation means
    x, w = rand(1, 2, 4, 3), rand(2, 3, 3, 2)
    holes = np.zeros((2, 3, 5, 3), np.float32)
    holes[:, :, ::2, ::2] = w
    expected = kernels.conv_transpose2d(x, holes, stride=(2, 1))
    np.testing.assert_allclose(kernels.conv_transpose2d(x, w, stride=(2, 1), dilation=(2, 2)), expected, atol=1e-6)


def test_conv_transpose_groups_is_per_group_transpose():
    x, w, b = rand(1, 4, 3, 3), rand(4, 3, 2, 2), rand(6)
    out = kernels.conv_transpose2d(x, w, b, stride=(2, 2), groups=2)
    first = kernels.conv_transpose2d(x[:, :2], w[:2], b[:3], stride=(2, 2))
    second = kernels.conv_transpose2d(x[:, 2:], w[2:], b[3:], stride=(2, 2))
    np.testing.assert_allclose(out, np.concatenate([first, second], axis=1), atol=1e-6)


@pytest.mark.parametrize("size", [(7, 9), (3, 5), (12, 4)])
def test_bilinear_half_pixel_matches_keras_resizing(size):
    x = rand(2, 5, 6, 3)
    expected = keras_call(keras.layers.Resizing(*size, interpolation="bilinear"), x).transpose(0, 3, 1, 2)
    out = kernels.resize_bilinear(x.transpose(0, 3, 1, 2), size, "half_pixel")
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("size", [(7, 9), (3, 5), (10, 12)])
def test_nearest_half_pixel_matches_keras_resizing(size):
    x = rand(1, 5, 6, 2)
    expected = keras_call(keras.layers.Resizing(*size, interpolation="nearest"), x).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(kernels.resize_nearest(x.transpose(0, 3, 1, 2), size, half_pixel=True), expected)


def test_bilinear_upsampling2d_matches_keras():
    x = rand(1, 3, 4, 2)
    expected = keras_call(keras.layers.UpSampling2D((2, 3), interpolation="bilinear"), x).transpose(0, 3, 1, 2)
    out = kernels.resize_bilinear(x.transpose(0, 3, 1, 2), (6, 12), "half_pixel")
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_sample_grid_modes_by_hand():
    # NeuralNetwork.proto's formulas for X = 4 inputs, N = 3 outputs
    np.testing.assert_allclose(kernels.sample_grid(4, 3, "align_corners"), [0, 1.5, 3])
    np.testing.assert_allclose(kernels.sample_grid(4, 1, "align_endpoints"), [1.5])
    np.testing.assert_allclose(kernels.sample_grid(4, 1, "align_corners"), [0])
    np.testing.assert_allclose(kernels.sample_grid(4, 3, "asymmetric"), [0, 4 / 3, 8 / 3])
    np.testing.assert_allclose(kernels.sample_grid(4, 3, "half_pixel"), [1 / 6, 1.5, 17 / 6])
    np.testing.assert_allclose(kernels.sample_grid(4, 3, "roi_align"), [0.5, 1.5, 2.5])
    np.testing.assert_allclose(kernels.sample_grid(2, 5, "half_pixel"), [0, 0.1, 0.5, 0.9, 1])  # clamped


def test_nearest_indices_exact_at_integer_ratios():
    # 4 -> 6: output 3 sits exactly on input 2; a float ratio 4 / 6.0001 would floor it to 1
    np.testing.assert_array_equal(kernels.nearest_indices(4, 6), [0, 0, 1, 2, 2, 3])


@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_matches_keras(approximate):
    x = rand(1000, scale=3)
    expected = np.asarray(keras.activations.gelu(x, approximate=approximate))
    mode = "TANH_APPROXIMATION" if approximate else "EXACT"
    np.testing.assert_allclose(kernels.gelu(x, mode), expected, atol=1e-5)


def test_gelu_sigmoid_approximation_and_erf_by_hand():
    x = np.array([-2.0, 0.0, 0.5, 3.0], np.float32)
    np.testing.assert_allclose(kernels.gelu(x, "SIGMOID_APPROXIMATION"), x / (1 + np.exp(-1.702 * x)), atol=1e-6)
    np.testing.assert_allclose(kernels.erf(np.array([0.0, 1.0, -0.5])), [0, 0.8427007929, -0.5204998778], atol=1e-6)
    with pytest.raises(UnsupportedModelError):
        kernels.gelu(x, "CUBIC")


def test_layer_norm_matches_keras():
    x = rand(3, 4, 5)
    layer = keras.layers.LayerNormalization(axis=-1, epsilon=1e-3)
    layer.build(x.shape)
    gamma, beta = rand(5), rand(5)
    layer.set_weights([gamma, beta])
    np.testing.assert_allclose(kernels.layer_norm(x, (-1,), gamma, beta, 1e-3), keras_call(layer, x), atol=1e-5)
