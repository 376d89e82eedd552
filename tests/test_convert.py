"""End to end: a trained model → Core ML in both formats → the saved spec says everything Xcode shows."""

import json

import pytest

from kerasml.conversion.to_coreml import ConvertOptions, convert
from kerasml.errors import KerasmlError
from kerasml.model.inspect import inspect_model, load_spec


@pytest.fixture(scope="module", params=["mlmodel", "mlpackage"])
def converted(request, trained_digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted") / f"digits.{request.param}"
    result = convert(ConvertOptions(model=trained_digits.model_path, labels="digits", out=out,
                                    format=request.param, author="Ada", license="MIT",
                                    version="2.1"), say=lambda m: None, warn=lambda m: None)
    return result, trained_digits


def test_spec_is_a_drop_in_for_apples_mnist_classifier(converted):
    result, _ = converted
    spec = load_spec(result.path)
    description = spec.description
    assert [f.name for f in description.input] == ["image"]
    image = description.input[0].type.imageType
    assert (image.width, image.height, image.colorSpace) == (28, 28, 10)  # 10 = GRAYSCALE
    outputs = {f.name: f.type.WhichOneof("Type") for f in description.output}
    assert outputs == {"classLabel": "int64Type", "labelProbabilities": "dictionaryType"}
    assert description.predictedFeatureName == "classLabel"
    assert description.predictedProbabilitiesName == "labelProbabilities"
    assert "Identity" not in str(description)


def test_metadata_is_complete(converted):
    result, trained = converted
    report = inspect_model(result.path)
    meta = report["metadata"]
    assert meta["author"] == "Ada" and meta["license"] == "MIT" and meta["version"] == "2.1"
    assert "handwritten digits" in meta["short_description"]
    assert f"{trained.record.test_accuracy:.2%}" in meta["short_description"]
    assert all(f["description"] for f in report["inputs"] + report["outputs"])
    user = meta["user_defined"]
    assert user["com.apple.coreml.model.preview.type"] == "imageClassifier"
    assert user["com.kerasml.dataset"] == trained.record.dataset
    assert user["com.kerasml.architecture"] == "tutorial"
    assert float(user["com.kerasml.test_accuracy"]) == pytest.approx(trained.record.test_accuracy, abs=1e-4)
    preprocessing = json.loads(user["com.kerasml.preprocessing"])
    assert preprocessing["scale"] == pytest.approx(1 / 255) and preprocessing["ink"] == "white-on-black"
    assert len(user["com.kerasml.source_sha256"]) == 64
    assert {"com.kerasml.kerasml_version", "com.kerasml.tensorflow_version",
            "com.kerasml.coremltools_version", "com.kerasml.training"} <= user.keys()


def test_labels_and_pixel_scale(converted):
    result, _ = converted
    report = inspect_model(result.path)
    assert report["class_labels"] == list(range(10))
    (step,) = report["image_preprocessing"]
    scale = step["scale"][0] if isinstance(step["scale"], list) else step["scale"]
    assert scale == pytest.approx(1 / 255, rel=1e-6)
    assert report["weight_precision"] == ["float32"]


def test_refuses_to_overwrite_without_force(converted):
    result, trained = converted
    with pytest.raises(KerasmlError, match="--force"):
        convert(ConvertOptions(model=trained.model_path, out=result.path, format=result.format),
                say=lambda m: None, warn=lambda m: None)


def test_label_count_must_match(trained_digits, tmp_path):
    with pytest.raises(KerasmlError, match="3 labels given but the model has 10 outputs"):
        convert(ConvertOptions(model=trained_digits.model_path, labels="a,b,c", out=tmp_path / "x.mlmodel"),
                say=lambda m: None, warn=lambda m: None)
    assert list(tmp_path.iterdir()) == []


def test_string_labels_from_a_file(trained_digits, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"digit {d}" for d in range(10)) + "\n")
    result = convert(ConvertOptions(model=trained_digits.model_path, labels=f"@{labels}",
                                    out=tmp_path / "named.mlmodel"), say=lambda m: None, warn=lambda m: None)
    spec = load_spec(result.path)
    assert list(spec.neuralNetworkClassifier.stringClassLabels.vector)[:2] == ["digit 0", "digit 1"]
    assert {f.name for f in spec.description.output} == {"classLabel", "labelProbabilities"}


def test_model_without_record_uses_stated_defaults(tmp_path):
    import keras
    model = keras.Sequential([keras.layers.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "bare.keras")
    notes = []
    result = convert(ConvertOptions(model=tmp_path / "bare.keras", out=tmp_path / "bare.mlmodel"),
                     say=notes.append, warn=notes.append)
    assert any("scale 1/255" in note for note in result.notes)
    assert any("assuming digits" in note for note in result.notes)


def test_model_that_rescales_itself_gets_raw_pixels(tmp_path):
    import keras
    model = keras.Sequential([keras.layers.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "rescaling.keras")
    result = convert(ConvertOptions(model=tmp_path / "rescaling.keras", labels="digits",
                                    out=tmp_path / "rescaling.mlmodel"), say=lambda m: None, warn=lambda m: None)
    assert any("Rescaling layer" in note for note in result.notes)
    (step,) = inspect_model(result.path)["image_preprocessing"]
    assert step["scale"] == 1.0


@pytest.mark.parametrize("fmt", ["mlmodel", "mlpackage"])
@pytest.mark.parametrize("precision, weights", [("fp16", "float16"), ("int8", "int8")])
def test_lower_precision_reports_size_and_accuracy_cost(trained_digits, small_digits_npz, tmp_path,
                                                        fmt, precision, weights):
    result = convert(ConvertOptions(model=trained_digits.model_path, labels="digits", format=fmt,
                                    precision=precision, data=small_digits_npz,
                                    out=tmp_path / f"q.{fmt}"), say=lambda m: None, warn=lambda m: None)
    fp16_program = (fmt, precision) == ("mlpackage", "fp16")  # converted in float16: no fp32 model to compare
    assert result.fp32_size_bytes is None if fp16_program else result.size_bytes < 0.6 * result.fp32_size_bytes
    assert result.accuracy["samples"] == 200
    assert abs(result.accuracy["points_change"]) <= 2.0
    from kerasml.runtime import load_model
    assert load_model(result.path).weight_precision == weights
    assert any("of the fp32 model" in line for line in result.summary_lines()) != fp16_program


def test_ml_programs_carry_short_names_and_each_small_constant_once(converted, tmp_path):
    """An ML Program's values are named `conv_0`, `c7`, ... and identical in-line constants (the
    strides, pads and pad types every convolution and pooling repeats) are written once; the
    runtime still computes what Keras computes."""
    from kerasml.checks.verify import verify
    from kerasml.conversion import short_names

    result, trained = converted
    spec = load_spec(result.path)
    if spec.WhichOneof("Type") != "mlProgram":
        assert short_names.deduplicate(spec) == 0       # NeuralNetwork models are left alone
        return
    block = next(iter(spec.mlProgram.functions["main"].block_specializations.values()))
    inline = [op.attributes["val"].SerializeToString(deterministic=True) + op.outputs[0].type.SerializeToString()
              for op in block.operations
              if op.type == "const" and op.attributes["val"].WhichOneof("value") == "immediateValue"]
    assert len(inline) == len(set(inline))                # each in-line constant once
    defined = {value.name for op in block.operations for value in op.outputs}
    used = [binding.name for op in block.operations for argument in op.inputs.values()
            for binding in argument.arguments if binding.WhichOneof("binding") == "name"]
    assert set(used) <= defined | {"image"}
    shared = [name for name in set(used) if name.startswith("c") and used.count(name) > 1]
    assert shared, "the tutorial net's convolutions and poolings share their strides and pads"
    assert all(len(name) <= 14 for name in defined - {"classLabel", "labelProbabilities"}), sorted(defined, key=len)[-3:]
    report = verify(result.path, trained.model_path, samples=64)
    assert report.passed and report.max_abs_diff < 1e-5


@pytest.mark.parametrize("fmt", ["mlmodel", "mlpackage"])
def test_batch_normalisation_after_a_dense_layer_folds_into_its_weights(fmt, tmp_path):
    """Dense(use_bias=False) → BatchNormalization reaches Core ML as matmul, mul, add; kerasml folds
    the scale into the weights, so one linear layer with a bias remains, computing what Keras does."""
    import keras
    import numpy as np

    from kerasml.conversion.to_coreml import convert_keras_model
    from kerasml.runtime import load_model

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(32, use_bias=False), keras.layers.BatchNormalization(),
                              keras.layers.ReLU(), keras.layers.Dense(10, activation="softmax")])
    batch_norm = model.layers[2]
    batch_norm.set_weights([np.linspace(0.5, 2.0, 32), np.linspace(-1, 1, 32),     # gamma, beta
                            np.linspace(-0.3, 0.3, 32), np.linspace(0.5, 3.0, 32)])  # moving mean, variance
    converted = convert_keras_model(model, fmt)
    spec = converted.get_spec()
    if fmt == "mlpackage":
        block = next(iter(spec.mlProgram.functions["main"].block_specializations.values()))
        kinds = [op.type for op in block.operations if op.type != "const"]
        after_flatten = kinds[kinds.index("reshape"):]      # the first mul is the pixel scale
        assert "mul" not in after_flatten and "add" not in after_flatten and after_flatten[1] == "linear", kinds
    else:
        kinds = [layer.WhichOneof("layer") for layer in spec.neuralNetworkClassifier.layers]
        assert "multiply" not in kinds and "add" not in kinds and kinds[2] == "innerProduct", kinds
    path = tmp_path / f"folded.{fmt}"
    converted.save(str(path))
    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1), dtype=np.uint8)
    expected = model.predict(images.astype(np.float32) / 255, verbose=0)
    np.testing.assert_allclose(load_model(path).predict_probabilities(images), expected, atol=1e-5)
