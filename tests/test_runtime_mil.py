"""ML Program ops of the kerasml runtime: each op alone against NumPy, then small Keras models
converted with coremltools (fp32, fp16 and compressed weights) against Keras itself."""

from __future__ import annotations

import numpy as np
import pytest

from kerasml.errors import KerasmlError
from kerasml.model import proto
from kerasml.runtime import UnsupportedModelError, load_model

from runtime_harness import call_mil, seeded

RNG = np.random.default_rng(3)
rand = seeded(3)


def call(kind: str, batched: tuple[str, ...] = ("x",), **inputs) -> np.ndarray:
    return call_mil(kind, batched, **inputs)[0]


# -- each op alone --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind,extra,fn",
    [
        ("relu", {}, lambda x: np.maximum(x, 0)),
        ("sigmoid", {}, lambda x: 1 / (1 + np.exp(-x))),
        ("tanh", {}, np.tanh),
        ("leaky_relu", {"alpha": np.float32(0.1)}, lambda x: np.where(x > 0, x, 0.1 * x)),
        ("elu", {"alpha": np.float32(1.0)}, lambda x: np.where(x > 0, x, np.expm1(x))),
        ("softplus", {}, lambda x: np.log1p(np.exp(x))),
        ("silu", {}, lambda x: x / (1 + np.exp(-x))),
        ("clip", {"alpha": np.float32(-0.5), "beta": np.float32(0.5)}, lambda x: np.clip(x, -0.5, 0.5)),
        ("relu6", {}, lambda x: np.clip(x, 0, 6)),
    ],
)
def test_activation_ops(kind, extra, fn):
    x = rand(3, 4, 5) * 3
    np.testing.assert_allclose(call(kind, x=x, **extra), fn(x), atol=1e-6)


@pytest.mark.parametrize(
    "kind,fn",
    [("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("real_div", np.divide), ("maximum", np.maximum)],
)
def test_binary_ops_broadcast_constants_per_prediction(kind, fn):
    x, y = rand(4, 2, 3), rand(3) + 3  # batched (N, 2, 3) with a constant row
    np.testing.assert_allclose(call(kind, x=x, y=y), fn(x, y), rtol=1e-6)
    lower = rand(4, 3)  # a batched rank-1 value against a constant rank-2 one lines up after the batch axis
    np.testing.assert_allclose(call(kind, batched=("x",), x=lower, y=rand(2, 3) + 3).shape, (4, 2, 3))


def test_conv_op_with_same_padding_groups_and_bias():
    x, w, bias = rand(2, 1, 4, 6, 6), rand(6, 2, 3, 3), rand(6)
    out = call(
        "conv",
        x=x,
        weight=w,
        bias=bias,
        strides=np.array([2, 2]),
        pad_type="same",
        dilations=np.array([1, 1]),
        groups=np.int32(2),
    )
    assert out.shape == (2, 1, 6, 3, 3)
    xp = np.pad(x[:, 0], ((0, 0), (0, 0), (0, 1), (0, 1)))  # 'same' for 6 by 3/2: one row and column at the end
    expected = np.zeros((2, 6, 3, 3))
    for i in range(3):
        for j in range(3):
            patch = xp[:, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3]
            expected[:, :3, i, j] = np.einsum("nckl,ockl->no", patch[:, :2], w[:3])
            expected[:, 3:, i, j] = np.einsum("nckl,ockl->no", patch[:, 2:], w[3:])
    np.testing.assert_allclose(out[:, 0], expected + bias[:, None, None], atol=1e-4)


@pytest.mark.parametrize("kind", ["max_pool", "avg_pool"])
def test_pool_ops_valid_and_ceil_mode(kind):
    x = rand(2, 1, 3, 5, 5)
    out = call(
        kind,
        x=x,
        kernel_sizes=np.array([2, 2]),
        strides=np.array([2, 2]),
        pad_type="valid",
        pad=np.zeros(4, np.int32),
        ceil_mode=np.bool_(False),
    )
    blocks = x[..., :4, :4].reshape(2, 1, 3, 2, 2, 2, 2)
    expected = blocks.max(axis=(4, 6)) if kind == "max_pool" else blocks.mean(axis=(4, 6))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    ceil = call(
        kind, x=x, kernel_sizes=np.array([2, 2]), strides=np.array([2, 2]), pad_type="valid", ceil_mode=np.bool_(True)
    )
    assert ceil.shape == (2, 1, 3, 3, 3)
    edge = x[..., 4, 4] if kind == "max_pool" else x[..., 4, 4]  # the last window holds one real pixel
    np.testing.assert_allclose(ceil[..., 2, 2], edge, atol=1e-6)


def test_linear_and_matmul_ops():
    x, w, bias = rand(4, 1, 6), rand(3, 6), rand(3)
    np.testing.assert_allclose(call("linear", x=x, weight=w, bias=bias), x @ w.T + bias, atol=1e-5)
    y = rand(3, 6)
    np.testing.assert_allclose(
        call("matmul", x=x, y=y, transpose_x=np.bool_(False), transpose_y=np.bool_(True)), x @ y.T, atol=1e-5
    )


def test_shape_ops_keep_the_batch_axis_first():
    x = rand(5, 1, 2, 3, 4)
    assert call("reshape", x=x, shape=np.array([1, -1])).shape == (5, 1, 24)
    np.testing.assert_array_equal(call("transpose", x=x, perm=np.array([0, 2, 3, 1])), x.transpose(0, 1, 3, 4, 2))
    assert call("squeeze", x=x, axes=np.array([0])).shape == (5, 2, 3, 4)
    assert call("expand_dims", x=x, axes=np.array([-1])).shape == (5, 1, 2, 3, 4, 1)
    assert call("tile", x=x, reps=np.array([1, 1, 2, 1])).shape == (5, 1, 2, 6, 4)
    both = call("concat", batched=("values",), values=[x, x], axis=np.int32(-3), interleave=np.bool_(False))
    np.testing.assert_array_equal(both, np.concatenate([x, x], axis=2))
    padded = call("pad", x=x, pad=np.array([1, 0, 0, 2]), mode="constant", constant_val=np.float32(0))
    np.testing.assert_array_equal(padded, np.pad(x, ((0, 0), (0, 0), (0, 0), (1, 0), (0, 2))))


def test_slice_and_bilinear_upsample_ops():
    x = rand(2, 1, 3, 6, 5)
    sliced = call(
        "slice_by_index",
        x=x,
        begin=np.array([0, 1, 1, 0]),
        end=np.array([1, 3, -1, 4]),
        stride=np.array([1, 1, 2, 1]),
        begin_mask=np.array([True, False, False, True]),
        end_mask=np.array([True, False, False, False]),
        squeeze_mask=np.array([False] * 4),
    )
    np.testing.assert_array_equal(sliced, x[:, :, 1:3, 1:-1:2, 0:4])
    up = call(
        "upsample_bilinear",
        x=x[..., :2, :2],
        scale_factor_height=np.float32(2),
        scale_factor_width=np.float32(2),
        align_corners=np.bool_(False),
    )
    corner = x[..., 0, 0]
    np.testing.assert_allclose(up[..., 0, 0], corner, atol=1e-6)  # half-pixel grid clamps at the edge
    np.testing.assert_allclose(up[..., 0, 1], 0.75 * corner + 0.25 * x[..., 0, 1], atol=1e-6)


def test_softmax_batch_norm_and_reductions():
    x = rand(3, 1, 4, 2, 2)
    s = call("softmax", x=x, axis=np.int32(1))
    np.testing.assert_allclose(s.sum(axis=2), 1, atol=1e-6)
    mean, var, gamma, beta = rand(4), np.abs(rand(4)) + 0.5, rand(4), rand(4)
    out = call("batch_norm", x=x, mean=mean, variance=var, gamma=gamma, beta=beta, epsilon=np.float32(1e-3))
    c = lambda v: v[:, None, None]  # noqa: E731
    np.testing.assert_allclose(out, c(gamma) * (x - c(mean)) / np.sqrt(c(var) + 1e-3) + c(beta), atol=1e-5)
    np.testing.assert_allclose(
        call("reduce_mean", x=x, axes=np.array([-2, -1]), keep_dims=np.bool_(True)),
        x.mean(axis=(3, 4), keepdims=True),
        atol=1e-6,
    )


def test_constexpr_ops_decompress_weights():
    q = RNG.integers(-128, 128, (4, 3)).astype(np.int8)
    scale, zero = np.array([0.1, 0.2, 0.3, 0.4], np.float32), np.array([1, -2, 0, 3], np.int8)
    affine = call(
        "constexpr_affine_dequantize", batched=(), quantized_data=q, zero_point=zero, scale=scale, axis=np.int32(0)
    )
    np.testing.assert_allclose(affine, (q - zero[:, None]) * scale[:, None], rtol=1e-6)
    block_scale = np.array([[0.5], [2.0]], np.float32)  # one scale per block of two rows
    shifted = call("constexpr_blockwise_shift_scale", batched=(), data=q, scale=block_scale)
    np.testing.assert_allclose(shifted, q * np.repeat(block_scale, 2, axis=0))
    lut = np.array([-1.0, 0.0, 0.5, 2.0], np.float32)
    indices = np.array([0, 1, 2, 3, 3, 2], np.uint8)
    packed = np.packbits(np.unpackbits(indices[:, None], axis=1, bitorder="little")[:, :2].ravel(), bitorder="little")
    dense = call("constexpr_lut_to_dense", batched=(), indices=packed, lut=lut, shape=np.array([2, 3], np.uint32))
    np.testing.assert_array_equal(dense, lut[indices].reshape(2, 3))
    blocked = call(
        "constexpr_lut_to_dense",
        batched=(),
        indices=indices.reshape(2, 3),
        lut=np.stack([lut, -lut]).reshape(2, 1, 4, 1),
    )
    np.testing.assert_array_equal(blocked, np.stack([lut[indices[:3]], -lut[indices[3:]]]))


# -- converted Keras models -----------------------------------------------------------------------
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
ct = pytest.importorskip("coremltools")
L = keras.layers


def model_a():
    """Strided 'same' and dilated convolutions, depthwise (grouped) convolution, batch norm folded
    into the convolution, pools, upsampling, padding, global average pooling and a dense head."""
    i = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, strides=2, padding="same")(i)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.Conv2D(8, 3, dilation_rate=2, activation="elu")(x)
    x = L.LeakyReLU(0.2)(x)
    x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    x = L.UpSampling2D(2)(x)
    x = L.ZeroPadding2D(((1, 0), (0, 1)))(x)
    x = L.Conv2D(8, 2, activation="sigmoid")(x)
    x = L.AveragePooling2D(2)(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(12, activation="tanh")(x)
    return keras.Model(i, L.Dense(5, activation="softmax")(x))


def model_b():
    """Branches joined by concatenate, add and multiply; 'same' average pooling; reshape/permute."""
    i = keras.Input((8, 8, 1))
    a = L.Conv2D(4, 3, padding="same", activation="softplus")(i)
    b = L.Conv2D(4, 1, use_bias=False)(i)
    x = L.Concatenate()([L.Concatenate()([a, b]), L.Add()([a, b]), L.Multiply()([a, b])])
    x = L.AveragePooling2D(3, strides=2, padding="same")(x)
    x = L.Permute((2, 1))(L.Reshape((4, -1))(L.Flatten()(x)))
    x = L.Dense(10, activation="swish")(L.Flatten()(x))
    return keras.Model(i, L.Dense(3, activation="softmax")(x))


def model_c():
    """Cropping (strided slices), relu6, layer norm, bilinear upsampling, global max and average
    pooling, batch norm after a dense-sized vector, hard sigmoid, a separate softmax."""
    i = keras.Input((10, 10, 3))
    x = L.Cropping2D(((1, 2), (0, 1)))(i)
    x = L.Conv2D(6, 3, activation="relu6")(x)
    x = L.LayerNormalization()(x)
    x = L.UpSampling2D(2, interpolation="bilinear")(x)
    x = L.Concatenate()([L.GlobalMaxPooling2D()(x), L.GlobalAveragePooling2D()(x)])
    x = L.Dense(4, activation="hard_sigmoid")(L.BatchNormalization()(x))
    return keras.Model(i, L.Softmax()(x))


def convert(model, convert_to: str, precision: str = "fp32", target=None):
    shape = (1,) + tuple(model.input_shape[1:])
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec(shape, tf.float32))
    kwargs = {}
    if convert_to == "mlprogram":
        kwargs["compute_precision"] = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
        kwargs["minimum_deployment_target"] = target or ct.target.iOS15
    return ct.convert([function], source="tensorflow", convert_to=convert_to, **kwargs)


@pytest.fixture(scope="module", params=[model_a, model_b])
def keras_model(request):
    keras.utils.set_random_seed(1)
    model = request.param()
    x = RNG.standard_normal((6,) + tuple(model.input_shape[1:])).astype(np.float32)
    return model, x, model.predict(x, verbose=0)


def _predict(path, x):
    model = load_model(path)
    return next(iter(model.predict({model.input_name: x}).values())).reshape(len(x), -1)


@pytest.mark.parametrize("fmt", ["neuralnetwork", "mlprogram"])
def test_converted_models_match_keras(keras_model, fmt, tmp_path):
    model, x, expected = keras_model
    path = tmp_path / ("m.mlmodel" if fmt == "neuralnetwork" else "m.mlpackage")
    convert(model, fmt).save(str(path))
    np.testing.assert_allclose(_predict(path, x), expected, atol=1e-5)


@pytest.mark.parametrize("fmt", ["neuralnetwork", "mlprogram"])
def test_more_converted_layers_match_keras(fmt, tmp_path):
    keras.utils.set_random_seed(1)
    model = model_c()
    x = RNG.standard_normal((5, 10, 10, 3)).astype(np.float32)
    path = tmp_path / ("m.mlmodel" if fmt == "neuralnetwork" else "m.mlpackage")
    convert(model, fmt).save(str(path))
    np.testing.assert_allclose(_predict(path, x), model.predict(x, verbose=0), atol=1e-5)


def test_unsaved_mlmodel_objects_load_too(keras_model):
    model, x, expected = keras_model
    mlmodel = convert(model, "mlprogram")
    loaded = load_model(mlmodel)
    np.testing.assert_allclose(
        next(iter(loaded.predict({loaded.input_name: x}).values())).reshape(len(x), -1), expected, atol=1e-5
    )
    with pytest.raises(KerasmlError, match="no input 'nope'"):
        loaded.predict({"nope": x})


def test_fp16_ml_program_runs_in_its_own_dtype(keras_model, tmp_path):
    model, x, expected = keras_model
    path = tmp_path / "m.mlpackage"
    convert(model, "mlprogram", "fp16").save(str(path))
    loaded = load_model(path)
    assert loaded.weight_precision == "float16"
    got = _predict(path, x)
    np.testing.assert_allclose(got, expected, atol=2e-2)
    assert not np.allclose(got, expected, atol=1e-6)  # fp16 rounding shows: the program was not run in fp32


@pytest.mark.parametrize("fmt", ["neuralnetwork", "mlprogram"])
def test_fp16_compute_of_an_fp32_model(keras_model, fmt, tmp_path):
    """compute="fp16": a NeuralNetwork with every value rounded to fp16 as the GPU holds it, near
    Keras; an fp32 ML Program exactly as in fp32 (typed execution keeps its float32 ops float32)."""
    model, x, expected = keras_model
    path = tmp_path / ("m.mlmodel" if fmt == "neuralnetwork" else "m.mlpackage")
    convert(model, fmt).save(str(path))
    half = load_model(path, compute="fp16")
    assert half.weight_precision == "float32"  # what the file stores, not how it is computed
    got = next(iter(half.predict({half.input_name: x}).values())).reshape(len(x), -1).astype(np.float32)
    np.testing.assert_allclose(got, expected, atol=2e-2)
    if fmt == "neuralnetwork":
        assert not np.allclose(got, expected, atol=1e-6) and half.fp16_events == []
    else:
        np.testing.assert_array_equal(got, _predict(path, x))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["iOS16", "iOS18"])
@pytest.mark.parametrize("method", ["linear", "palettize"])
def test_compressed_weights_decode_like_coremltools(keras_model, method, target, tmp_path):
    import coremltools.optimize.coreml as cto

    model, x, expected = keras_model
    mlmodel = convert(model, "mlprogram", target=getattr(ct.target, target))
    if method == "linear":
        config = cto.OptimizationConfig(cto.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=0))
        compressed = cto.linear_quantize_weights(mlmodel, config)
    else:
        # "uniform" palettes need no scikit-learn (k-means does), and give the same constexpr ops.
        config = cto.OptimizationConfig(cto.OpPalettizerConfig(mode="uniform", nbits=4, weight_threshold=0))
        compressed = cto.palettize_weights(mlmodel, config)
    compressed.save(str(tmp_path / "c.mlpackage"))
    cto.decompress_weights(compressed).save(str(tmp_path / "d.mlpackage"))
    loaded = load_model(tmp_path / "c.mlpackage")
    assert loaded.weight_precision == ("int8" if method == "linear" else "lut")
    got = _predict(tmp_path / "c.mlpackage", x)
    np.testing.assert_allclose(got, _predict(tmp_path / "d.mlpackage", x), atol=1e-6)
    np.testing.assert_allclose(got, expected, atol=0.2)


def test_program_weights_need_their_package(tmp_path):
    keras.utils.set_random_seed(1)
    path = tmp_path / "m.mlpackage"
    convert(model_a(), "mlprogram").save(str(path))
    (path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").write_bytes(b"\0" * 80)
    with pytest.raises(KerasmlError, match="weight.bin"):
        load_model(path)


def _blob_values(spec):
    for op in spec.mlProgram.functions["main"].block_specializations["CoreML5"].operations:
        for value in op.attributes.values():
            if value.WhichOneof("value") == "blobFileValue":
                yield value.blobFileValue


@pytest.mark.parametrize("how", ["dot-dot name", "link"])
def test_program_weights_outside_the_package_are_refused(tmp_path, how):
    """@model_path/... must stay inside the .mlpackage, even where a valid weight file lies outside."""
    keras.utils.set_random_seed(1)
    path = tmp_path / "m.mlpackage"
    convert(model_a(), "mlprogram").save(str(path))
    model_dir = path / "Data" / "com.apple.CoreML"
    outside = tmp_path / "outside"
    outside.mkdir()
    (model_dir / "weights" / "weight.bin").rename(outside / "weight.bin")
    if how == "link":
        (model_dir / "weights").rmdir()
        (model_dir / "weights").symlink_to(outside, target_is_directory=True)
    else:
        spec = proto.model_pb2().Model.FromString((model_dir / "model.mlmodel").read_bytes())
        for blob in _blob_values(spec):
            blob.fileName = "@model_path/../../../outside/weight.bin"
        (model_dir / "model.mlmodel").write_bytes(spec.SerializeToString())
    with pytest.raises(KerasmlError, match="outside its .mlpackage"):
        load_model(path)


def test_fp16_overflow_is_refused_not_guessed():
    """A finite result beyond fp16's range in an fp16 program: inf or the value, by compute unit."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3))], opset_version=ct.target.iOS15)
    def program(x):
        return mb.mul(x=x, y=np.float32(1000.0), name="scaled")

    mlmodel = ct.convert(program, convert_to="mlprogram", compute_precision=ct.precision.FLOAT16, skip_model_load=True)
    model = load_model(mlmodel)
    output = next(iter(model.predict({"x": np.full((1, 1, 3), 60.0, np.float32)}).values()))
    np.testing.assert_allclose(output, np.full((1, 1, 3), 60000.0), rtol=1e-3)  # in range: computed
    with pytest.raises(UnsupportedModelError, match=r"'scaled\w*' \(mul\) computes 70000, beyond the fp16 range"):
        model.predict({"x": np.full((1, 1, 3), 70.0, np.float32)})
    inf = np.array([[[np.inf, 1.0, 2.0]]], np.float32)  # inf in, inf out: nothing overflowed
    assert np.isinf(next(iter(model.predict({"x": inf}).values()))[0, 0, 0])


def test_unsupported_op_names_op_and_type(tmp_path):
    path = tmp_path / "m.mlpackage"
    convert(model_a(), "mlprogram").save(str(path))
    spec = load_model(path).spec
    op = next(
        o for o in spec.mlProgram.functions["main"].block_specializations["CoreML5"].operations if o.type == "tanh"
    )
    op.type = "random_uniform"  # random ops stay refused: no seed makes them match Core ML
    with pytest.raises(UnsupportedModelError, match=f"op '{op.outputs[0].name}' has type 'random_uniform'"):
        load_model(spec)


@pytest.mark.parametrize("colour", ["RGB", "BGR"])
@pytest.mark.parametrize("fmt", ["neuralnetwork", "mlprogram"])
def test_colour_image_inputs_apply_their_preprocessing(colour, fmt, tmp_path):
    keras.utils.set_random_seed(2)
    i = keras.Input((6, 5, 3))
    x = L.GlobalAveragePooling2D()(L.Conv2D(4, 3, activation="relu")(i))
    model = keras.Model(i, L.Dense(3, activation="softmax")(x))
    function = tf.function(lambda t: model(t, training=False)).get_concrete_function(
        tf.TensorSpec((1, 6, 5, 3), tf.float32)
    )
    kwargs = (
        {"compute_precision": ct.precision.FLOAT32, "minimum_deployment_target": ct.target.iOS15}
        if fmt == "mlprogram"
        else {}
    )
    mlmodel = ct.convert(
        [function],
        source="tensorflow",
        convert_to=fmt,
        **kwargs,
        inputs=[
            ct.ImageType(
                shape=(1, 6, 5, 3), scale=0.01, bias=[-1.0, 0.5, 2.0], color_layout=getattr(ct.colorlayout, colour)
            )
        ],
        classifier_config=ct.ClassifierConfig(["a", "b", "c"]),
    )
    path = tmp_path / ("m.mlmodel" if fmt == "neuralnetwork" else "m.mlpackage")
    mlmodel.save(str(path))
    loaded = load_model(path)
    assert (loaded.image.colour, loaded.image.scale, loaded.image.bias) == (
        colour.lower(),
        pytest.approx(0.01),
        (-1.0, 0.5, 2.0),
    )
    rgb = RNG.integers(0, 256, (7, 6, 5, 3)).astype(np.uint8)
    channels = rgb[..., ::-1] if colour == "BGR" else rgb  # what the network sees, in the model's order
    expected = model.predict(channels * np.float32(0.01) + np.array([-1.0, 0.5, 2.0], np.float32), verbose=0)
    np.testing.assert_allclose(loaded.predict_probabilities(rgb), expected, atol=1e-5)
    assert loaded.predict({loaded.input_name: rgb[:2]})[loaded.class_label_output] == [
        ["a", "b", "c"][k] for k in expected[:2].argmax(1)
    ]
