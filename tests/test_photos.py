"""Photos of digits on paper: `kerasml.preprocess.prepare_photo`, the algorithm DigitKit's
`PhotoPreparer` runs in the app, checked on the shared photo fixtures and on simulated photos."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kerasml.errors import KerasmlError
from kerasml.preprocess import PhotoPreparation, prepare_photo, rasterize_strokes

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests/fixtures"
APP_MODEL = ROOT / "ios_app/DigitDemo/DigitClassifier.mlmodel"
sys.path.insert(0, str(FIXTURES))
from photos import Scene, photo_of  # noqa: E402  (tests/fixtures/photos.py)


def _read_netpbm(path: Path) -> np.ndarray:
    magic, size, maximum, pixels = path.read_bytes().split(b"\n", 3)    # as generate.py writes them
    width, height = size.split()
    assert maximum == b"255"
    shape = (int(height), int(width)) + ((3,) if magic == b"P6" else ())
    return np.frombuffer(pixels, dtype=np.uint8).reshape(shape)


def _photo_cases() -> list[dict]:
    return json.loads((FIXTURES / "digits.json").read_text(encoding="utf-8"))["photo_cases"]


def test_photo_fixture_files_are_what_the_generator_makes():
    spec = importlib.util.spec_from_file_location("fixture_generator", FIXTURES / "generate.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    files = generator.photo_files()
    assert sorted(files) == sorted(case["file"] for case in _photo_cases())
    for relative, data in files.items():
        assert (FIXTURES / relative).read_bytes() == data, f"{relative} is stale: run tests/fixtures/generate.py"


def test_photo_fixtures_pixel_for_pixel():
    """The same 28x28 pixels, notes and steps DigitKit gives (checked by `swift test`)."""
    cases = _photo_cases()
    assert {"pen_seven_rgb", "pen_two_large_gray", "chalk_four_on_a_board", "blank_paper"} <= {c["name"] for c in cases}
    for case in cases:
        prepared = prepare_photo(_read_netpbm(FIXTURES / case["file"]))
        assert np.array_equal(prepared.image, np.asarray(case["expected"], dtype=np.uint8)), case["name"]
        assert prepared.notes == case["notes"] and [n for n, _ in prepared.steps] == case["steps"], case["name"]


def test_the_interface_the_browser_page_calls():
    photo = photo_of(rasterize_strokes([[(40, 40), (160, 40), (90, 170)]], 200, 12), Scene(seed=9))
    for pixels in (photo, np.asarray(Image.fromarray(photo).convert("L"))):
        prepared = prepare_photo(pixels)
        assert isinstance(prepared, PhotoPreparation)
        assert prepared.image.shape == (28, 28) and prepared.image.dtype == np.uint8
        names = [name for name, _ in prepared.steps]
        assert names[:4] == ["grayscale", "illumination corrected", "ink mask", "cropped"] and names[-1] == "centred"
        assert all(image.dtype == np.uint8 and image.ndim == 2 for _, image in prepared.steps)
        assert np.array_equal(prepared.steps[-1][1], prepared.image)
        assert "inverted: dark ink on light paper" in prepared.notes
        assert any(note.startswith("cropped to the largest ink component") for note in prepared.notes)
        rows = np.flatnonzero(prepared.image.max(axis=1))
        assert rows[-1] - rows[0] + 1 == 20


def test_the_table_and_the_shadow_are_not_ink():
    prepared = prepare_photo(photo_of(np.zeros((20, 20), np.uint8), Scene(light=0.6, margin=0.15, seed=2)))
    assert not prepared.image.any()
    assert prepared.notes[-1].startswith("no ink found")


def test_bad_photos_are_one_clear_error():
    for bad in (np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4), np.float32), np.zeros((0, 3), np.uint8),
                np.zeros((2, 2, 2, 3), np.uint8)):
        with pytest.raises(KerasmlError, match=r"expected an \(H, W\) or \(H, W, 3\) uint8 photo"):
            prepare_photo(bad)


def test_predict_says_what_it_did_with_a_photo(tmp_path):
    """`kerasml predict MODEL photo.jpg` prepares the photo as the app does and says how."""
    pytest.importorskip("coremltools")
    from typer.testing import CliRunner

    from kerasml.cli import app

    seven = photo_of(rasterize_strokes([[(40, 40), (160, 40), (90, 170)]], 200, 12), Scene(seed=11))
    Image.fromarray(seven).save(tmp_path / "seven.jpg", quality=90)
    result = CliRunner().invoke(app, ["predict", str(APP_MODEL), str(tmp_path / "seven.jpg")])
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'seven.jpg'}: 7" in result.output
    prepared = next(line for line in result.output.splitlines() if line.startswith("  prepared: "))
    assert "inverted: dark ink on light paper; cropped to the largest ink component" in prepared


def _simulated(digit: np.ndarray, index: int, rng) -> np.ndarray:
    """An MNIST digit printed dark on paper and photographed: size, place, light, tilt vary."""
    return photo_of(digit, Scene(seed=index, rotation=float(rng.uniform(-6, 6)), light=float(rng.uniform(0.2, 0.6)),
                                 digit_height=float(rng.uniform(0.3, 0.7)), noise=float(rng.uniform(2, 8)),
                                 centre=(float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.35, 0.65)))),
                    rgb=bool(index % 2))


@pytest.mark.slow
def test_the_app_model_reads_real_mnist_digits_from_simulated_photos(mnist_test):
    """The first real MNIST test digits (../shared/data/mnist-test; skipped when absent) as photos:
    120 in `make test` (about 40 s), more with KERASML_PHOTO_DIGITS=500 for the README's figure."""
    import os

    from kerasml.runtime import load_model

    started = time.perf_counter()
    count = int(os.environ.get("KERASML_PHOTO_DIGITS", "120"))
    images, labels = mnist_test[0][:count], mnist_test[1][:count]
    rng = np.random.default_rng(2026)
    prepared = np.stack([prepare_photo(_simulated(d, i, rng)).image for i, d in enumerate(images)])
    model = load_model(APP_MODEL)
    from_photos = (model.predict_probabilities(prepared).argmax(axis=1) == labels).mean()
    direct = (model.predict_probabilities(images).argmax(axis=1) == labels).mean()
    print(f"app model on {count} MNIST test digits: {direct:.1%} as given, {from_photos:.1%} from simulated photos "
          f"({time.perf_counter() - started:.0f} s)")
    assert from_photos >= direct - 0.03


def test_only_digit_models_get_the_digit_preparation(tmp_path, monkeypatch):
    """A 28x28 grayscale model of garments (Fashion-MNIST's labels) gets the plain resize: the
    digit preparation would cut a shirt down to one thickened ink component."""
    from kerasml.checks import predict as predict_module
    from kerasml.preprocess import prepare_picture, reads_digits
    from kerasml.record import DIGITS, FASHION

    assert reads_digits(DIGITS) and reads_digits(list(reversed(DIGITS))) and reads_digits(range(10))
    assert not reads_digits(FASHION) and not reads_digits(DIGITS[:9]) and not reads_digits(["a"] * 10)

    seven = photo_of(rasterize_strokes([[(40, 40), (160, 40), (90, 170)]], 200, 12), Scene(seed=11))
    picture = Image.fromarray(seven)
    as_digit = prepare_picture(picture, 28, 28, 1)
    as_other = prepare_picture(picture, 28, 28, 1, digits=False)
    assert any("cropped" in note for note in as_digit.notes)
    assert as_other.notes[-1] == "resized to 28x28" and not any("cropped" in note for note in as_other.notes)

    class Garments:   # what load_classifier returns, for a 28x28 grayscale model with Fashion's labels
        image = type("Image", (), {"height": 28, "width": 28, "channels": 1})()
        labels = FASHION

        def predict_probabilities(self, images):
            self.seen = images
            return np.full((len(images), 10), 0.1)

    model = Garments()
    monkeypatch.setattr(predict_module, "load_classifier", lambda path: model)
    picture.save(tmp_path / "shirt.png")
    (result,) = predict_module.predict(tmp_path / "garments.mlmodel", [tmp_path / "shirt.png"])
    assert result.notes == as_other.notes
    np.testing.assert_array_equal(model.seen[0], as_other.image)
