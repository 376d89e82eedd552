"""Keras and Core ML → Core AI (.aimodel), proven with Apple's own runtime; every command takes an
.aimodel; a damaged one is one error line, never a crash."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_cli import assert_one_line_error, run

pytest.importorskip("coreai.authoring", reason="Apple's coreai-core is not installed here")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def converted(trained_digits, tmp_path_factory):
    """The trained digit model as .aimodel and .mlpackage, with the same options."""
    folder = tmp_path_factory.mktemp("coreai")
    options = ["--labels", "digits", "--author", "Ada", "--license", "MIT", "--model-version", "2.1"]
    ai = run("convert", trained_digits.model_path, "--format", "aimodel", "--out", folder / "d.aimodel", *options)
    assert ai.returncode == 0, ai.stderr
    package = run("convert", trained_digits.model_path, "--format", "mlpackage", "--out", folder / "d.mlpackage",
                  *options)
    assert package.returncode == 0, package.stderr
    return folder / "d.aimodel", folder / "d.mlpackage", ai.stdout


def test_convert_writes_the_asset_and_says_what_it_takes(converted):
    aimodel, _, stdout = converted
    assert sorted(p.name for p in aimodel.iterdir()) == ["main.hash", "main.mlirb", "metadata.json"]
    assert "image: float32 [N, 28, 28, 1], raw grayscale pixels 0-255; inside, scale 0.00392157" in stdout
    assert "labelProbabilities: float32 [N, 10]" in stdout
    assert not list(aimodel.parent.glob(".d.aimodel*")), "a temporary folder was left behind"


def test_metadata_travels_as_on_the_core_ml_model(converted):
    from kerasml.model.aimodel import check_asset
    from kerasml.runtime import load_model

    aimodel, package, _ = converted
    metadata = check_asset(aimodel)
    core_ml = load_model(package)
    assert (metadata.author, metadata.license, metadata.version) == ("Ada", "MIT", "2.1")
    assert metadata.description == core_ml.about["description"] and "handwritten digits" in metadata.description
    assert metadata.labels == [str(d) for d in range(10)]
    for key in ("com.kerasml.preprocessing", "com.kerasml.dataset", "com.kerasml.architecture",
                "com.kerasml.training", "com.kerasml.precision"):
        assert metadata.creator_defined[key] == core_ml.creator_defined[key], key
    assert json.loads(metadata.creator_defined["com.kerasml.preprocessing"])["scale"] == pytest.approx(1 / 255)


def test_inspect_shows_the_function_and_metadata(converted):
    result = run("inspect", converted[0], "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (function,) = report["functions"]
    assert function["name"] == "classify"
    assert function["inputs"] == [{"name": "image", "type": "NDArray (Float32, ? × 28 × 28 × 1)"}]
    assert function["outputs"] == [{"name": "labelProbabilities", "type": "NDArray (Float32, ? × 10)"}]
    assert report["class_labels"] == [str(d) for d in range(10)]
    assert report["operations"]["conv2d"] == 3          # the tutorial net: three convolutions


def test_verify_runs_apples_runtime_and_names_it(converted, trained_digits):
    result = run("verify", converted[0], "--keras", trained_digits.model_path, "--samples", "300", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] and report["max_abs_diff"] <= 1e-5
    assert report["runtime"].startswith("Apple Core AI runtime")
    assert set(report["columns"]) == {"Keras", "Apple Core AI runtime"}
    assert report["top1_agreement"] == 1.0


def test_apple_runtime_agrees_with_kerasml_runtime_on_the_ml_program(converted, mnist_or_bundled):
    from kerasml.coreai.runtime import load_aimodel
    from kerasml.runtime import load_model

    images = mnist_or_bundled[:500]
    apple = load_aimodel(converted[0]).predict_probabilities(images)
    numpy = load_model(converted[1]).predict_probabilities(images)
    assert apple.shape == (len(images), 10)
    assert np.abs(apple - numpy).max() < 1e-5
    assert (apple.argmax(1) == numpy.argmax(1)).all()


@pytest.fixture(scope="module")
def mnist_or_bundled():
    from kerasml.data.sources import load_mnist_sample

    return load_mnist_sample()["x_train"]


def test_evaluate_and_predict_take_an_aimodel(converted, small_digits_npz, tmp_path):
    from PIL import Image

    aimodel, package, _ = converted
    results = [json.loads(run("evaluate", model, "--data", small_digits_npz, "--json",
                              "--plot", tmp_path / f"{model.suffix[1:]}.png").stdout) for model in (aimodel, package)]
    assert results[0]["accuracy"] == results[1]["accuracy"]
    picture = tmp_path / "seven.png"
    with np.load(small_digits_npz) as data:
        Image.fromarray(data["x_test"][0]).save(picture)
    predictions = [json.loads(run("predict", model, picture, "--json").stdout)[0] for model in (aimodel, package)]
    assert predictions[0]["classLabel"] == predictions[1]["classLabel"]
    assert predictions[0]["top"][0]["probability"] == pytest.approx(predictions[1]["top"][0]["probability"], abs=1e-5)


# -- migration: an existing Core ML model, not made by kerasml ---------------------------------------
def _foreign_program(path: Path, bgr: bool):
    """An RGB classifier made by coremltools directly: its own scale and per-channel bias, string labels."""
    import tensorflow as tf

    from kerasml.libs import coremltools

    ct = coremltools()
    rng = np.random.default_rng(3)
    kernel = tf.constant(rng.normal(size=(3, 3, 3, 4)).astype(np.float32))
    dense = tf.constant(rng.normal(size=(4, 3)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec((1, 16, 16, 3), tf.float32)])
    def model(x):
        y = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"))
        return tf.nn.softmax(tf.reduce_mean(y, axis=[1, 2]) @ dense)

    mlmodel = ct.convert([model.get_concrete_function()], source="tensorflow", convert_to="mlprogram",
                         compute_precision=ct.precision.FLOAT32,
                         inputs=[ct.ImageType(shape=(1, 16, 16, 3), scale=1 / 127.5, bias=[-1.0, -0.5, 0.0],
                                              color_layout=ct.colorlayout.BGR if bgr else ct.colorlayout.RGB)],
                         classifier_config=ct.ClassifierConfig(["cat", "dog", "bird"]))
    mlmodel.author = "someone else"
    mlmodel.save(str(path))
    return path


@pytest.mark.parametrize("bgr", [False, True])
def test_a_foreign_ml_program_migrates_computing_what_it_computes(tmp_path, bgr):
    from kerasml.model.aimodel import check_asset
    from kerasml.coreai.runtime import load_aimodel
    from kerasml.runtime import load_model

    source = _foreign_program(tmp_path / "pets.mlpackage", bgr)
    result = run("convert", source, "--format", "aimodel")
    assert result.returncode == 0, result.stderr
    aimodel = tmp_path / "pets.aimodel"
    images = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    want = load_model(source).predict_probabilities(images)
    got = load_aimodel(aimodel).predict_probabilities(images)
    assert np.abs(got - want).max() < 1e-5
    metadata = check_asset(aimodel)
    assert metadata.labels == ["cat", "dog", "bird"] and metadata.author == "someone else"
    recorded = json.loads(metadata.creator_defined["com.kerasml.preprocessing"])
    assert recorded["scale"] == pytest.approx(1 / 127.5)
    assert recorded["channel_order"] == ("bgr" if bgr else "rgb")
    assert metadata.creator_defined["com.kerasml.converted_from"].startswith("Core ML ML Program")


# -- refusals and damage: one line, exit code 2, nothing left behind ----------------------------------
def test_core_ml_source_needs_format_aimodel(converted, tmp_path):
    assert_one_line_error(run("convert", converted[1], "--out", tmp_path / "x.mlmodel"), "--format aimodel")


def test_out_must_be_an_aimodel(trained_digits, tmp_path):
    result = run("convert", trained_digits.model_path, "--format", "aimodel", "--out", tmp_path / "x.mlpackage")
    assert_one_line_error(result, "must end in .aimodel")


def test_existing_output_is_kept_without_force(converted, trained_digits):
    before = converted[0].joinpath("main.hash").read_bytes()
    result = run("convert", trained_digits.model_path, "--format", "aimodel", "--out", converted[0])
    assert_one_line_error(result, "already exists")
    assert converted[0].joinpath("main.hash").read_bytes() == before


def _damaged(converted, tmp_path, how: str) -> Path:
    copy = tmp_path / "damaged.aimodel"
    shutil.copytree(converted[0], copy)
    program = copy / "main.mlirb"
    if how == "truncated":
        program.write_bytes(program.read_bytes()[:2000])
    elif how == "truncated, hash rewritten":
        data = program.read_bytes()[: len(program.read_bytes()) // 2]
        program.write_bytes(data)
        (copy / "main.hash").write_bytes(hashlib.sha256(data).digest())
    elif how == "missing hash":
        (copy / "main.hash").unlink()
    elif how == "metadata not JSON":
        (copy / "metadata.json").write_text("{author: nobody")
    elif how == "path leaving the folder":
        outside = tmp_path / "elsewhere.json"
        (copy / "metadata.json").rename(outside)
        (copy / "metadata.json").symlink_to(outside)
    return copy


@pytest.mark.parametrize("how, message", [
    ("truncated", "does not match its hash"),
    ("truncated, hash rewritten", "cannot read its program"),
    ("missing hash", "main.hash is missing"),
    ("metadata not JSON", "is not valid JSON"),
    ("path leaving the folder", "points outside the model folder"),
])
@pytest.mark.parametrize("command", ["inspect", "evaluate"])
def test_a_damaged_aimodel_is_one_line(converted, tmp_path, how, message, command):
    assert_one_line_error(run(command, _damaged(converted, tmp_path, how)), message)


def test_not_a_folder_is_one_line(tmp_path):
    fake = tmp_path / "fake.aimodel"
    fake.write_text("nothing")
    assert_one_line_error(run("inspect", fake), "a Core AI model is a folder")


def test_without_coreai_core_says_how_to_install(converted):
    probe = ("import sys; sys.modules['coreai'] = None; sys.argv = ['kerasml', 'inspect', %r]\n"
             "from kerasml.cli import main\nmain()" % str(converted[0]))
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert_one_line_error(result, "pip install coreai-core==1.0.0b3")


def test_report_on_an_aimodel_beside_its_keras_source(converted, trained_digits, small_digits_npz, tmp_path):
    folder = tmp_path / "beside"
    shutil.copytree(Path(trained_digits.model_path).parent, folder)
    shutil.copytree(converted[0], folder / "digits.aimodel")
    result = run("report", folder / "digits.aimodel", "--data", small_digits_npz, "--samples", "100")
    assert result.returncode == 0, result.stderr
    assert "predicted by the Apple Core AI runtime" in result.stdout
    pictures = sorted(p.name for p in (folder / "digits.report").glob("*.png"))
    assert {"confusion.png", "curves.png", "filters.png", "mistakes.png"} <= set(pictures), pictures
