"""Models we did not train: Keras 2 files, SavedModels, flat MLPs, logits, colour images.

Every fixture is made here (tf_keras writes real Keras 2 HDF5 files), converted, and then
checked with the NumPy runtime against the original model."""

from __future__ import annotations

import pytest

from kerasml.conversion.to_coreml import ConvertOptions, convert
from kerasml.model.inspect import inspect_model
from kerasml.checks.verify import verify


def quietly(**options):
    return convert(ConvertOptions(**options), say=lambda m: None, warn=lambda m: None)


def assert_parity(coreml, keras_path, **kwargs):
    result = verify(coreml, keras_path, samples=200, **kwargs)
    assert result.passed, "\n".join(result.lines())
    assert result.max_abs_diff <= 1e-5 and result.top1_agreement == 1.0


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    import keras
    import tf_keras

    d = tmp_path_factory.mktemp("wild")
    keras.utils.set_random_seed(1)
    tf_keras.utils.set_random_seed(1)
    tf_keras.Sequential([
        tf_keras.layers.Conv2D(8, 3, activation="relu", input_shape=(28, 28, 1)),
        tf_keras.layers.MaxPooling2D(), tf_keras.layers.Flatten(),
        tf_keras.layers.Dense(10, activation="softmax")]).save(d / "keras2.h5")
    keras.Sequential([keras.layers.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                      keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]).save(d / "keras3.h5")
    keras.Sequential([keras.layers.Input((784,)), keras.layers.Dense(32, activation="relu"),
                      keras.layers.Dense(10)]).save(d / "flat_logits.keras")
    rgb = keras.Sequential([keras.layers.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, padding="same"),
                            keras.layers.BatchNormalization(), keras.layers.ReLU(),
                            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    rgb.save(d / "rgb.keras")
    rgb.export(str(d / "rgb_savedmodel"), verbose=False)
    keras.Sequential([keras.layers.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 1.0),
                      keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]).save(d / "lambda.keras")
    return d


def test_keras2_h5_through_tf_keras(made):
    result = quietly(model=made / "keras2.h5", labels="digits", out=made / "keras2.mlmodel")
    assert inspect_model(made / "keras2.h5")["format"] == "tf_keras"
    assert_parity(result.path, made / "keras2.h5")


def test_keras3_h5(made):
    result = quietly(model=made / "keras3.h5", labels="digits", out=made / "keras3.mlpackage", format="mlpackage")
    assert inspect_model(made / "keras3.h5")["format"] == "keras3"
    assert_parity(result.path, made / "keras3.h5")


def test_flat_input_logits_model_becomes_an_image_classifier(made):
    result = quietly(model=made / "flat_logits.keras", labels="digits", input_shape="28x28",
                     out=made / "flat.mlmodel")
    assert any("added a softmax" in note for note in result.notes)
    report = inspect_model(result.path)
    assert report["inputs"][0]["type"] == "imageType" and report["inputs"][0]["width"] == 28
    assert_parity(result.path, made / "flat_logits.keras")


def test_flat_input_is_detected_with_a_note(made):
    result = quietly(model=made / "flat_logits.keras", labels="digits", out=made / "flat-auto.mlmodel")
    assert any("flat input of 784 values" in note for note in result.notes)


def test_no_softmax_keeps_logits(made):
    result = quietly(model=made / "flat_logits.keras", labels="digits", add_softmax=False,
                     out=made / "logits.mlmodel")
    assert any("keeping the model's logits" in note for note in result.notes)


@pytest.mark.parametrize("source", ["rgb.keras", "rgb_savedmodel"])
def test_colour_model_and_savedmodel(made, source):
    result = quietly(model=made / source, labels="red,green,blue", bias="-1", scale=1 / 127.5,
                     out=made / f"{source}.mlmodel")
    report = inspect_model(result.path)
    assert report["inputs"][0]["colour"] == "RGB" and report["inputs"][0]["width"] == 32
    assert report["class_labels"] == ["red", "green", "blue"]
    step = report["image_preprocessing"][0]
    assert step["red_bias"] == step["green_bias"] == step["blue_bias"] == -1.0
    assert_parity(result.path, made / source)


def test_lambda_layer_needs_unsafe(made):
    from kerasml.errors import KerasmlError
    with pytest.raises(KerasmlError, match="--unsafe"):
        quietly(model=made / "lambda.keras", labels="digits", out=made / "lambda.mlmodel")
    warnings = []
    result = convert(ConvertOptions(model=made / "lambda.keras", labels="digits", unsafe=True,
                                    out=made / "lambda.mlmodel"), say=lambda m: None, warn=warnings.append)
    assert warnings and "--unsafe" in warnings[0]
    assert_parity(result.path, made / "lambda.keras", unsafe=True)
