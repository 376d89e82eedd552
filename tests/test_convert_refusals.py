"""Layers Core ML cannot express: one line, exit code 2, nothing written. When only the NeuralNetwork
format lacks the op, the line names `--format mlpackage`, and that format converts it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from kerasml.cli import app

runner = CliRunner()


def fixed_shift():
    """A one-pixel shift as a fixed projective transform: Core ML's `affine`, an ML Program-only op.
    (A registered layer, so the saved model loads again in this process.)"""
    import keras
    import tensorflow as tf

    @keras.saving.register_keras_serializable(package="kerasml_test")
    class FixedShift(keras.layers.Layer):
        def call(self, x):
            return tf.raw_ops.ImageProjectiveTransformV3(
                images=x, transforms=tf.constant([[1, 0, -1, 0, 1, 0, 0, 0]], tf.float32),
                output_shape=tf.constant([12, 12]), fill_value=tf.constant(0.0), interpolation="BILINEAR",
                fill_mode="CONSTANT")

    return FixedShift()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("refusals")
    keras.utils.set_random_seed(3)
    for name, layer in (("affine", fixed_shift()),
                        ("bicubic", keras.layers.Resizing(18, 18, "bicubic"))):
        keras.Sequential([keras.layers.Input((12, 12, 1)), layer, keras.layers.Flatten(),
                          keras.layers.Dense(10, activation="softmax")]).save(folder / f"{name}.keras")
    return folder


def convert(model, fmt, *extra):
    out = model.with_suffix("." + fmt)
    result = runner.invoke(app, ["convert", str(model), "--format", fmt, "--out", str(out), *extra])
    return result, out


def test_neural_network_refusal_names_mlpackage(models):
    result, out = convert(models / "affine.keras", "mlmodel")
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "--format mlpackage" in error[0] and "NeuralNetwork" in error[0]
    assert not out.exists()
    result, out = convert(models / "affine.keras", "mlpackage")
    assert result.exit_code == 0, result.output
    assert out.exists()


@pytest.mark.parametrize("fmt", ["mlmodel", "mlpackage"])
def test_no_format_names_the_layer_and_the_way_out(models, fmt):
    result, out = convert(models / "bicubic.keras", fmt)
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "either format" in error[0]
    assert "resizing" in error[0] and "bilinear" in error[0] and "Traceback" not in result.output
    assert not out.exists()
