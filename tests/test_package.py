"""`kerasml package`: a model goes into the demo app only if the app can use it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kerasml.errors import KerasmlError
from kerasml.app.contract import CONTRACT, PROJECT, load_contract
from kerasml.app.package import next_steps, package_model
from kerasml.model.coreml_spec import class_labels

APP_DIR = Path(__file__).resolve().parents[1] / "ios_app"
MODEL_IN_APP = load_contract(APP_DIR).model_file

ct = pytest.importorskip("coremltools")


def _spec(side: int = 28, colour: str = "GRAYSCALE", labels: int = 10, classifier: bool = True):
    """A tiny Core ML model like the ones kerasml converts: image -> classLabel, labelProbabilities."""
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    from coremltools.proto import FeatureTypes_pb2

    channels = 1 if colour == "GRAYSCALE" else 3
    size = channels * side * side
    builder = NeuralNetworkBuilder([("image", datatypes.Array(channels, side, side))],
                                   [("labelProbabilities", datatypes.Array(labels))],
                                   mode="classifier" if classifier else None)
    builder.add_flatten("flat", mode=0, input_name="image", output_name="flat")
    builder.add_inner_product("dense", W=np.zeros((labels, size), np.float32), b=np.zeros(labels, np.float32),
                              input_channels=size, output_channels=labels, has_bias=True,
                              input_name="flat", output_name="logits")
    builder.add_softmax("softmax", input_name="logits", output_name="labelProbabilities")
    if classifier:
        builder.set_class_labels(list(range(labels)), predicted_feature_name="classLabel",
                                 prediction_blob="labelProbabilities")
    builder.set_pre_processing_parameters(image_input_names=["image"], image_scale=1 / 255.0)
    image = builder.spec.description.input[0].type.imageType
    image.width = image.height = side
    image.colorSpace = getattr(FeatureTypes_pb2.ImageFeatureType, colour)
    return builder.spec


def _save(spec, path: Path) -> Path:
    ct.utils.save_spec(spec, str(path))
    return path


@pytest.fixture
def app(tmp_path) -> Path:
    app_dir = tmp_path / "app"
    (app_dir / PROJECT).mkdir(parents=True)
    (app_dir / CONTRACT).write_text((APP_DIR / CONTRACT).read_text(encoding="utf-8"), encoding="utf-8")
    return app_dir


def test_copies_a_fitting_model_where_the_project_expects_it(tmp_path, app):
    model = _save(_spec(), tmp_path / "digits.mlmodel")
    destination = package_model(model, app)
    assert destination == app / MODEL_IN_APP
    assert destination.read_bytes() == model.read_bytes()
    assert class_labels(ct.utils.load_spec(str(destination))) == list(range(10))
    assert sorted(p.name for p in destination.parent.iterdir()) == [destination.name]   # no leftovers


def test_replaces_only_with_force(tmp_path, app):
    model = _save(_spec(), tmp_path / "digits.mlmodel")
    package_model(model, app)
    with pytest.raises(KerasmlError, match="already exists; pass --force"):
        package_model(model, app, force=False)
    assert package_model(model, app, force=True) == app / MODEL_IN_APP
    assert package_model(app / MODEL_IN_APP, app, force=False) == app / MODEL_IN_APP   # already there


@pytest.mark.parametrize("spec_args, reason", [
    (dict(colour="RGB"), "input 'image' is RGB, not GRAYSCALE"),
    (dict(side=32), "input 'image' is 32x32, not 28x28"),
    (dict(labels=3), "it has 3 labels, not 10"),
    (dict(classifier=False), "it is not a classifier"),
])
def test_refuses_models_that_do_not_fit(tmp_path, app, spec_args, reason):
    model = _save(_spec(**spec_args), tmp_path / "other.mlmodel")
    with pytest.raises(KerasmlError, match="does not fit the demo app") as error:
        package_model(model, app)
    assert reason in str(error.value)
    assert "\n" not in str(error.value)
    assert not (app / MODEL_IN_APP).exists()


def test_refuses_a_model_too_new_for_ios_16(tmp_path, app):
    spec = _spec()
    spec.specificationVersion = 8
    with pytest.raises(KerasmlError, match="needs iOS 17 .* the app targets iOS 16"):
        package_model(_save(spec, tmp_path / "new.mlmodel"), app)


def test_refuses_a_model_trained_on_dark_ink(tmp_path, app):
    spec = _spec()
    spec.description.metadata.userDefined["com.kerasml.preprocessing"] = (
        '{"height": 28, "width": 28, "channels": 1, "ink": "black-on-white"}')
    with pytest.raises(KerasmlError, match="trained on black-on-white images"):
        package_model(_save(spec, tmp_path / "dark.mlmodel"), app)
    spec.description.metadata.userDefined["com.kerasml.preprocessing"] = "not json"
    assert package_model(_save(spec, tmp_path / "odd.mlmodel"), app) == app / MODEL_IN_APP


def test_refuses_more_than_one_input(tmp_path, app):
    spec = _spec()
    extra = spec.description.input.add()
    extra.name = "scale"
    extra.type.doubleType.SetInParent()
    with pytest.raises(KerasmlError, match="exactly one image input"):
        package_model(_save(spec, tmp_path / "two.mlmodel"), app)


def test_refuses_what_is_not_a_model_file(tmp_path, app):
    (tmp_path / "broken.mlmodel").write_bytes(b"\x00not a protobuf at all\xff" * 10)
    with pytest.raises(KerasmlError, match="not a readable Core ML model"):
        package_model(tmp_path / "broken.mlmodel", app)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(KerasmlError, match="not a .mlmodel file"):
        package_model(tmp_path / "notes.txt", app)
    with pytest.raises(KerasmlError, match="does not exist"):
        package_model(tmp_path / "missing.mlmodel", app)


def test_refuses_an_mlpackage(tmp_path, app):
    package = tmp_path / "digits.mlpackage"
    (package / "Data").mkdir(parents=True)
    with pytest.raises(KerasmlError, match="--format mlmodel"):
        package_model(package, app)


def test_refuses_a_folder_that_is_not_the_app(tmp_path):
    model = _save(_spec(), tmp_path / "digits.mlmodel")
    with pytest.raises(KerasmlError, match=f"has no {PROJECT}; pass --app"):
        package_model(model, tmp_path / "elsewhere")


def test_next_steps_name_the_project():
    steps = next_steps(Path("ios_app"))
    assert steps[0].startswith("open ios_app/DigitDemo.xcodeproj")
    assert any("Run" in line for line in steps)


def test_the_repository_app_expects_this_model_name():
    """The path package_model writes is the one the committed Xcode project references."""
    project = Path(__file__).resolve().parents[1] / "ios_app" / PROJECT / "project.pbxproj"
    assert MODEL_IN_APP.name in project.read_text(encoding="utf-8")


@pytest.mark.slow
def test_drawings_are_recognised_by_a_packaged_kerasml_model(tmp_path, app, sample_cnn):
    """Train, convert with kerasml, package, then read the shared drawing fixtures as the app would.

    The app gives the model exactly the 28x28 arrays in tests/fixtures/digits.json (DigitKit makes
    the same pixels, checked by `swift test`), so this is the app's pipeline on Linux, minus the UI.
    """
    import json

    convert = pytest.importorskip("kerasml.conversion.to_coreml")
    from kerasml.runtime import load_model

    converted = convert.convert(convert.ConvertOptions(model=sample_cnn, labels="digits",
                                                       out=tmp_path / "digits.mlmodel"), say=lambda line: None)

    packaged = load_model(package_model(converted.path, app))
    cases = json.loads((Path(__file__).resolve().parent / "fixtures/digits.json").read_text(encoding="utf-8"))
    drawn = {c["name"]: c["label"] for c in cases["stroke_cases"] if c["label"] is not None}
    images = {c["name"]: np.asarray(c["expected"], dtype=np.uint8) for c in cases["stroke_cases"]}
    probabilities = packaged.predict_probabilities(np.stack([images[name] for name in drawn]))
    read = {name: str(packaged.labels[i]) for name, i in zip(drawn, probabilities.argmax(axis=1))}
    wrong = {name: got for name, got in read.items() if got != drawn[name]}
    print(f"packaged model read the drawings as {read}")
    from PIL import Image                       # for comparison: squashing the whole canvas to 28x28
    from kerasml.app.reading import sketch_raster
    squashed = [np.asarray(Image.fromarray(sketch_raster(c["strokes"], c["canvas_side"]))
                           .resize((28, 28), Image.Resampling.BOX)) for c in cases["stroke_cases"] if c["name"] in drawn]
    naive = [str(packaged.labels[i]) for i in packaged.predict_probabilities(np.stack(squashed)).argmax(axis=1)]
    print(f"squashing the canvas instead reads them as {dict(zip(drawn, naive))}")
    assert len(wrong) <= 1, f"misread drawings: {wrong} (expected {drawn})"


def _edit_contract(app: Path, change) -> None:
    import json

    path = app / CONTRACT
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_the_check_follows_the_app_contract(tmp_path, app):
    """One file decides: a 32x32 app takes the 32x32 model and refuses the 28x28 one."""
    def to_32(data):
        data["model"]["input"].update(width=32, height=32)
    _edit_contract(app, to_32)
    with pytest.raises(KerasmlError, match="is 28x28, not 32x32"):
        package_model(_save(_spec(), tmp_path / "small.mlmodel"), app)
    assert package_model(_save(_spec(side=32), tmp_path / "big.mlmodel"), app) == app / MODEL_IN_APP

    def letters(data):
        data["model"]["labels"] = list("abcdefghij")
    _edit_contract(app, letters)
    with pytest.raises(KerasmlError, match="its labels are 0, 1, .*, not a, b, c"):
        package_model(_save(_spec(side=32), tmp_path / "digits.mlmodel"), app)


def test_a_missing_or_broken_contract_is_one_clear_error(tmp_path, app):
    model = _save(_spec(), tmp_path / "digits.mlmodel")
    (app / CONTRACT).write_text("{not json", encoding="utf-8")
    with pytest.raises(KerasmlError, match="is not a valid app contract"):
        package_model(model, app)
    _edit_contract_text = '{"model": {"file": "x.mlmodel"}}'
    (app / CONTRACT).write_text(_edit_contract_text, encoding="utf-8")
    with pytest.raises(KerasmlError, match="is not a valid app contract .*KeyError"):
        package_model(model, app)
    (app / CONTRACT).unlink()
    with pytest.raises(KerasmlError, match="app-contract.json is missing"):
        package_model(model, app)
    assert not (app / MODEL_IN_APP).exists()


def test_the_repository_contract_says_what_the_app_was_built_for():
    contract = load_contract(APP_DIR)
    assert (contract.width, contract.height, contract.colour, contract.ink) == (28, 28, "grayscale", "white-on-black")
    assert contract.labels == tuple("0123456789")
    assert all(key.startswith("com.kerasml.") for key in contract.metadata_keys.values())
    assert 0 < contract.minimum_confidence < 1


# -- one fixture of outcomes, run here and by DigitKit's ContractOutcomeTests ------------------------
OUTCOMES = json.loads((Path(__file__).parent / "fixtures" / "contract-outcomes.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", OUTCOMES["cases"], ids=[c["name"] for c in OUTCOMES["cases"]])
def test_contract_outcomes_shared_with_the_app(case):
    from kerasml.app.fit import problems

    found = problems(case["model"], case["format"], load_contract(APP_DIR))
    assert {p.kind for p in found} == set(case.get("reasons", [])), [p.text for p in found]
    assert (case["verdict"] == "accepted") == (not found)
    assert set(case.get("reasons", [])) <= set(OUTCOMES["reasons"]), "every kind the fixture uses is explained"


@pytest.fixture(scope="module")
def digit_aimodel(trained_digits, tmp_path_factory):
    pytest.importorskip("coreai.authoring", reason="Apple's coreai-core is not installed here")
    from kerasml.conversion.to_coreai import convert
    from kerasml.conversion.to_coreml import ConvertOptions

    out = tmp_path_factory.mktemp("ai") / "digits.aimodel"
    convert(ConvertOptions(model=trained_digits.model_path, labels="digits", format="aimodel", out=out),
            say=lambda m: None, warn=lambda m: None)
    return out


@pytest.mark.slow
def test_an_aimodel_goes_into_the_core_ai_folder(digit_aimodel, app):
    destination = package_model(digit_aimodel, app)
    assert destination == app / load_contract(APP_DIR).core_ai.model_file
    assert sorted(p.name for p in destination.iterdir()) == ["main.hash", "main.mlirb", "metadata.json"]
    assert (destination / "main.mlirb").read_bytes() == (digit_aimodel / "main.mlirb").read_bytes()
    assert not (app / MODEL_IN_APP).exists(), "the Core ML model's place is left alone"


@pytest.mark.slow
def test_an_aimodel_with_other_labels_is_refused(digit_aimodel, app, tmp_path):
    import shutil

    copy = tmp_path / "letters.aimodel"
    shutil.copytree(digit_aimodel, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata["creatorDefinedMetadata"]["com.kerasml.labels"] = json.dumps(list("abcdefghij"))
    (copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(KerasmlError, match="its labels are a, b, c"):
        package_model(copy, app)
    assert not (app / load_contract(APP_DIR).core_ai.model_file).exists()
