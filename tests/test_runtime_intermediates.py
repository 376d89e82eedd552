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


def program_model(build, shape=(1, 3, 4, 4), image=True, target=None):
    """An fp32 ML Program of `build(x)`; its input an RGB image when `image`."""
    target = target or ct.target.iOS15

    @mb.program(input_specs=[mb.TensorSpec(shape=shape)], opset_version=target)
    def program(x):
        return build(x)

    inputs = [ct.ImageType(name="x", shape=shape, color_layout=ct.colorlayout.RGB)] if image else None
    return ct.convert(program, convert_to="mlprogram", inputs=inputs, compute_precision=ct.precision.FLOAT32,
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


def test_fp16_compute_rounds_every_value_and_records_overflow_nan_and_underflow():
    def build(x):
        scaled = mb.mul(x=x, y=np.float32(1000.0), name="scaled")
        diff = mb.sub(x=scaled, y=scaled, name="diff")  # inf - inf: NaN, although neither input is NaN
        tiny = mb.mul(x=mb.mul(x=mb.mul(x=x, y=np.float32(1e-4)), y=np.float32(1e-4)), y=np.float32(1e-4),
                      name="tiny")
        return mb.add(x=mb.add(x=diff, y=tiny), y=np.float32(1.0), name="total"), scaled

    mlmodel = program_model(build, shape=(1, 3), image=False)
    x = np.array([[[70.0, 1.3, 2.0]]], np.float32)
    exact = load_model(mlmodel)
    out32 = exact.predict({"x": x})
    assert exact.compute == "fp32" and exact.fp16_events == []
    np.testing.assert_allclose(out32[exact.output_names[1]], x * 1000, rtol=1e-6)  # fp32: 70000 as it is
    model = load_model(mlmodel, compute="fp16")
    out16 = model.predict({"x": x})
    scaled = out16[model.output_names[1]]
    assert scaled.dtype == np.float16 and np.isinf(scaled[0, 0, 0])
    np.testing.assert_array_equal(scaled[0, 0, 1:], np.float16(np.float16(x[0, 0, 1:]) * np.float16(1000)))
    events = model.fp16_events
    assert ("scaled", "overflow") in events and ("diff", "nan") in events and ("tiny", "underflow") in events
    assert not [e for e in events if e[1] == "nan" and e[0] != "diff"]  # NaN downstream is not new
    model.predict({"x": np.zeros((1, 1, 3), np.float32)})
    assert model.fp16_events == []  # the latest call's events (zeros stay zeros: nothing lost)


def test_fp16_intermediates_of_both_formats_hold_fp16_values():
    program = load_model(program_model(steps), compute="fp16")
    values = program.intermediates(IMAGES)
    assert all(v.dtype == np.float16 for v in values.values())
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
