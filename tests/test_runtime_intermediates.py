"""The hook `kerasml diff` reads: every value a model computes (`intermediates`), and computing as
the GPU and Neural Engine do (`load_model(..., compute="fp16")`) with what fp16 does to each value
recorded (`fp16_events`), for ML Programs and NeuralNetworks."""

from __future__ import annotations

import numpy as np
import pytest

from kerasml.errors import KerasmlError
from kerasml.runtime import load_model

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402

from runtime_harness import nn_builder  # noqa: E402

RNG = np.random.default_rng(11)
IMAGES = RNG.integers(0, 256, (5, 4, 4, 3)).astype(np.uint8)


def program_model(build, shape=(1, 3, 4, 4), image=True, target=None, precision="fp32"):
    """An ML Program of `build(x)` computing in `precision` (fp32 or fp16, coremltools' default);
    its input an RGB image when `image`."""
    target = target or ct.target.iOS15

    @mb.program(input_specs=[mb.TensorSpec(shape=shape)], opset_version=target)
    def program(x):
        return build(x)

    inputs = [ct.ImageType(name="x", shape=shape, color_layout=ct.colorlayout.RGB)] if image else None
    compute = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
    return ct.convert(program, convert_to="mlprogram", inputs=inputs, compute_precision=compute,
                      minimum_deployment_target=target, skip_model_load=True)


def steps(x):
    doubled = mb.mul(x=x, y=np.float32(2.0), name="doubled")
    shifted = mb.sub(x=doubled, y=np.float32(255.0), name="shifted")
    rectified = mb.relu(x=shifted, name="rectified")
    return mb.reduce_mean(x=rectified, axes=[1, 2, 3], keep_dims=False, name="mean")


def test_ml_program_intermediates_are_every_op_output_per_prediction():
    model = load_model(program_model(steps))
    values = model.intermediates(IMAGES)
    x = IMAGES.transpose(0, 3, 1, 2)[:, None].astype(np.float32)  # (N, 1, 3, 4, 4)
    assert list(values)[:3] == ["doubled", "shifted", "rectified"]
    np.testing.assert_array_equal(values["doubled"], 2 * x)
    np.testing.assert_array_equal(values["shifted"], 2 * x - 255)
    np.testing.assert_array_equal(values["rectified"], np.maximum(2 * x - 255, 0))
    assert all(len(v) == len(IMAGES) for v in values.values())
    output = model.predict({"x": IMAGES})[model.output_names[0]]
    np.testing.assert_allclose(values[list(values)[-1]], output, rtol=1e-6)
    picked = model.intermediates(IMAGES[:2], names=["rectified"])
    assert list(picked) == ["rectified"] and picked["rectified"].shape == (2, 1, 3, 4, 4)
    with pytest.raises(KerasmlError, match="no value named 'nowhere'"):
        model.intermediates(IMAGES, names=["nowhere"])


def nn_image_model():
    """image (RGB 4x4) → convolution → ReLU → max pooling: ReLU is fused into the convolution's
    buffer and into the pooling when only the prediction is asked for."""
    b = nn_builder((3, 4, 4), inputs=("image",))
    w = np.random.default_rng(5).standard_normal((3, 3, 3, 2)).astype(np.float32) * 0.01
    b.add_convolution("conv", 3, 2, 3, 3, 1, 1, "same", 1, w, np.array([-1.0, 0.5], np.float32), True,
                      input_name="image", output_name="conv_out")
    b.add_activation("relu", "RELU", "conv_out", "relu_out")
    b.add_pooling("pool", 2, 2, 2, 2, "MAX", "VALID", input_name="relu_out", output_name="out")
    image = b.spec.description.input[0].type
    image.imageType.width, image.imageType.height = 4, 4
    image.imageType.colorSpace = ct.proto.FeatureTypes_pb2.ImageFeatureType.RGB
    return b.spec


def test_neural_network_intermediates_are_each_layers_own_output():
    model = load_model(nn_image_model())
    values = model.intermediates(IMAGES)
    assert list(values) == ["conv_out", "relu_out", "out"]
    assert (values["conv_out"] < 0).any()  # the convolution's own output, before the fused ReLU
    np.testing.assert_array_equal(values["relu_out"], np.maximum(values["conv_out"], 0))
    np.testing.assert_array_equal(values["out"], values["relu_out"].reshape(5, 2, 2, 2, 2, 2).max(axis=(3, 5)))
    np.testing.assert_allclose(model.predict({"image": IMAGES})["out"], values["out"], rtol=1e-6)
    assert list(model.intermediates(IMAGES, names=["relu_out"])) == ["relu_out"]


def overflowing(x):
    scaled = mb.mul(x=x, y=np.float32(1000.0), name="scaled")
    diff = mb.sub(x=scaled, y=scaled, name="diff")  # inf - inf: NaN, although neither input is NaN
    tiny = mb.mul(x=mb.mul(x=mb.mul(x=x, y=np.float32(1e-4)), y=np.float32(1e-4)), y=np.float32(1e-4),
                  name="tiny")
    return mb.add(x=mb.add(x=diff, y=tiny), y=np.float32(1.0), name="total"), scaled


def test_fp16_program_overflows_as_the_hardware_does_and_records_overflow_nan_and_underflow():
    mlmodel = program_model(overflowing, shape=(1, 3), image=False, precision="fp16")
    x = np.array([[[70.0, 1.3, 2.0]]], np.float32)
    with pytest.raises(KerasmlError, match=r"computes 70000, beyond the fp16 range"):
        load_model(mlmodel).predict({"x": x})   # compute="fp32" (the CPU) refuses: no single answer
    model = load_model(mlmodel, compute="fp16")
    assert model.declares_fp16
    out16 = model.predict({"x": x})
    scaled = out16[model.output_names[1]]
    assert np.isinf(scaled[0, 0, 0])
    np.testing.assert_array_equal(scaled[0, 0, 1:], np.float16(np.float16(x[0, 0, 1:]) * np.float16(1000)))
    kinds = {kind: name for name, kind in model.fp16_events}
    assert set(kinds) == {"overflow", "nan", "underflow"}
    assert kinds["overflow"].startswith("scaled") and kinds["nan"].startswith("diff")
    assert kinds["underflow"].startswith("tiny")   # NaN downstream of diff is not recorded again
    model.predict({"x": np.zeros((1, 1, 3), np.float32)})
    assert model.fp16_events == []  # the latest call's events (zeros stay zeros: nothing lost)


def test_fp32_program_keeps_float32_under_fp16_compute():
    """Typed execution: Core ML runs an op declared float32 in float32 (on the GPU or CPU), so an
    fp32 program computes the same under compute="fp16" and nothing is recorded."""
    mlmodel = program_model(overflowing, shape=(1, 3), image=False)
    x = np.array([[[70.0, 1.3, 2.0]]], np.float32)
    exact, half = load_model(mlmodel), load_model(mlmodel, compute="fp16")
    assert not half.declares_fp16
    for name, value in exact.predict({"x": x}).items():
        np.testing.assert_array_equal(half.predict({"x": x})[name], value)
    assert half.fp16_events == []


def test_fp16_intermediates_of_both_formats_hold_fp16_values():
    program = load_model(program_model(steps, precision="fp16"), compute="fp16")
    values = program.intermediates(IMAGES)
    assert {name: v.dtype for name, v in values.items()} == {   # cast in, computed in fp16, cast out
        "x_to_fp16": np.float16, "doubled_cast_fp16": np.float16, "shifted_cast_fp16": np.float16,
        "rectified_cast_fp16": np.float16, "mean_cast_fp16": np.float16, "mean": np.float32}
    network = load_model(nn_image_model(), compute="fp16")
    exact = load_model(nn_image_model()).intermediates(IMAGES)
    for name, value in network.intermediates(IMAGES).items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, value.astype(np.float16).astype(np.float32))  # fp16 values
        np.testing.assert_allclose(value, exact[name], rtol=2e-3, atol=2e-3)


def test_fp16_neural_network_records_an_overflowing_layer():
    b = nn_builder((3,))
    b.add_activation("big", "LINEAR", "data", "out", params=[1000.0, 0.0])
    x = np.array([[70.0, 1.0, -2.0]], np.float32)
    assert load_model(b.spec).predict({"data": x})["out"][0, 0] == pytest.approx(70000)
    model = load_model(b.spec, compute="fp16")
    out = model.predict({"data": x})["out"]
    assert np.isinf(out[0, 0]) and out[0, 1] == 1000
    assert model.fp16_events == [("out", "overflow")]


def test_compute_mode_is_checked():
    with pytest.raises(KerasmlError, match="compute must be one of fp32, fp16"):
        load_model(nn_image_model(), compute="int8")
