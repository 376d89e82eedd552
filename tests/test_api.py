"""The Python API (`kerasml.__all__`): every name importable and documented, `import kerasml` light,
and the pipeline run from Python end to end as the commands run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kerasml

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = ["train", "convert", "verify", "evaluate", "predict", "prepare_photo", "diff"]


def test_the_declared_api():
    assert set(FUNCTIONS) <= set(kerasml.__all__)
    page = (REPO / "docs" / "python.md").read_text(encoding="utf-8")
    for name in kerasml.__all__:
        value = getattr(kerasml, name)                       # importable, lazily
        if name in FUNCTIONS:
            assert callable(value) and value.__doc__, name
            assert f"### `kerasml.{name}(" in page, f"docs/python.md does not document {name}"
    assert issubclass(kerasml.KerasmlError, Exception)
    with pytest.raises(AttributeError):
        kerasml.nothing_here   # noqa: B018


def test_import_kerasml_stays_light():
    code = ("import sys, kerasml; kerasml.verify; "
            "print(sorted({'tensorflow', 'keras', 'coremltools', 'coreai'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_bad_input_raises_the_commands_line():
    with pytest.raises(kerasml.KerasmlError, match="does not exist"):
        kerasml.verify("missing.mlpackage", "missing.keras")
    photo = kerasml.prepare_photo(np.full((60, 40), 255, np.uint8))   # a blank white photo
    assert photo.image.shape == (28, 28) and not photo.image.any()


@pytest.mark.slow
def test_the_pipeline_from_python(tmp_path):
    trained = kerasml.train(tmp_path / "digits.keras", dataset="mnist-sample", arch="tutorial", epochs=1)
    assert trained.model_path.exists() and trained.record is not None
    converted = kerasml.convert(trained.model_path, labels="digits", out=tmp_path / "Digits.mlpackage")
    assert converted.format == "mlpackage" and converted.path.is_dir()
    verified = kerasml.verify(converted.path, trained.model_path, samples=100)
    assert verified.passed, verified.lines()
    layers = kerasml.diff(trained.model_path, converted.path, samples=20)
    assert layers.first_divergent_layer is None and layers.rows
    from PIL import Image

    from kerasml.data import load_mnist_sample

    sample = load_mnist_sample()
    Image.fromarray(sample["x_train"][0][..., 0]).save(tmp_path / "digit.png")
    (guess,) = kerasml.predict(converted.path, tmp_path / "digit.png")
    assert len(guess.top) == 3 and guess.class_label in [str(i) for i in range(10)]
    evaluated = kerasml.evaluate(converted.path, plot=tmp_path / "confusion.png")
    assert 0.5 < evaluated.accuracy <= 1 and (tmp_path / "confusion.png").exists()
