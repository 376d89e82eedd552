"""MNIST-style preparation of drawings and photos (kerasml.preprocess), and the shared fixtures."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from kerasml.errors import KerasmlError
from kerasml.preprocess import model_stroke_width, normalize_digit, prepare_image, rasterize_sketch, rasterize_strokes

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests/fixtures/digits.json"
SAMPLE = ROOT / "kerasml/data/mnist_sample.npz"


def _generator():
    spec = importlib.util.spec_from_file_location("fixture_generator", ROOT / "tests/fixtures/generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _within_one_grey_level(actual: np.ndarray, expected, name: str) -> None:
    expected = np.asarray(expected, dtype=np.int64)
    assert actual.shape == expected.shape == (28, 28), name
    worst = np.abs(actual.astype(np.int64) - expected).max()
    assert worst <= 1, f"{name}: a pixel differs by {worst} grey levels"


def _ink_box(image: np.ndarray) -> tuple[int, int]:
    rows = np.flatnonzero(image.max(axis=1) > 0)
    cols = np.flatnonzero(image.max(axis=0) > 0)
    return (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) if rows.size else (0, 0)


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    weights = image.astype(np.float64)
    total = weights.sum()
    index = np.arange(image.shape[0])
    return (weights.sum(axis=1) @ index) / total, (weights.sum(axis=0) @ index) / total


# Shared fixtures: the same file is checked by `swift test` in ios_app/.

def test_fixtures_are_what_the_current_code_generates():
    generator = _generator()
    committed = json.loads(FIXTURES.read_text(encoding="utf-8"))
    assert committed == json.loads(json.dumps(generator.build())), \
        "tests/fixtures/digits.json is stale: run .venv/bin/python tests/fixtures/generate.py"
    assert generator.render(generator.build()) + "\n" == FIXTURES.read_text(encoding="utf-8")


def test_stroke_fixtures_are_drawn_as_the_app_draws_them():
    """The drawings are rasterised by the app's rule (the contract's `drawing`), pixel for pixel."""
    from kerasml.app.contract import load_contract

    drawing = json.loads((ROOT / "ios_app/app-contract.json").read_text(encoding="utf-8"))["drawing"]
    contract = load_contract(ROOT / "ios_app")
    assert (contract.raster_side, contract.stroke_divisor, contract.minimum_stroke) == (
        drawing["raster_side"], drawing["stroke_divisor"], drawing["minimum_stroke"])
    cases = json.loads(FIXTURES.read_text(encoding="utf-8"))["stroke_cases"]
    names = {c["name"] for c in cases}
    assert {"empty", "dot", "tiny_seven_top_left", "huge_three_filling_the_canvas", "five_in_points"} <= names
    for case in cases:
        raster = rasterize_sketch(case["strokes"], case["canvas_side"], contract.raster_side,
                                  contract.stroke_divisor, contract.minimum_stroke)
        assert raster.shape == (contract.raster_side, contract.raster_side)
        assert int((raster > 0).sum()) == case["ink_pixels"], case["name"]
        assert np.array_equal(normalize_digit(raster), np.asarray(case["expected"], dtype=np.uint8)), case["name"]


def test_tiny_and_huge_drawings_get_mnist_strokes():
    """The model raster's stroke follows the drawing's size, so both come out 2-4 px wide."""
    from kerasml.app.reading import sketch_raster

    three = [(0.27, 0.2), (0.52, 0.16), (0.66, 0.31), (0.5, 0.47), (0.68, 0.64), (0.53, 0.81), (0.27, 0.77)]
    tiny, huge = (normalize_digit(sketch_raster([[(x * scale + dx, y * scale + dx) for x, y in three]], 1.0))
                  for scale, dx in ((0.12, 0.01), (1.3, -0.12)))
    for out in (tiny, huge):
        ink = out > 127
        inner = ink[1:-1, 1:-1] & ink[:-2, 1:-1] & ink[2:, 1:-1] & ink[1:-1, :-2] & ink[1:-1, 2:]
        width = 2 * ink.sum() / (ink.sum() - inner.sum())       # stroke width ~ 2 * area / boundary
        assert 1.5 <= width <= 4, width
    assert np.abs(tiny.astype(int) - huge.astype(int)).mean() < 12
    assert model_stroke_width([], 6, 2.0) == 2.0 and model_stroke_width([[(0, 0), (60, 30)]], 6, 2.0) == 10.0


def test_image_fixtures_within_one_grey_level():
    for case in json.loads(FIXTURES.read_text(encoding="utf-8"))["image_cases"]:
        image = np.asarray(case["image"], dtype=np.uint8)
        _within_one_grey_level(normalize_digit(image), case["expected"], case["name"])


# normalize_digit

def test_empty_image_gives_zeros():
    out = normalize_digit(np.zeros((300, 200), dtype=np.uint8))
    assert out.shape == (28, 28) and out.dtype == np.uint8 and not out.any()


def test_longer_side_is_twenty_and_centre_of_mass_is_at_fourteen():
    canvas = rasterize_strokes([[(200, 20), (230, 20), (210, 90)]], 280, 280 / 15)   # a small 7, top right
    out = normalize_digit(canvas)
    assert max(_ink_box(out)) == 20
    cy, cx = _centre_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_strokes_come_out_mnist_thin():
    """A stroke 1/15 of the canvas wide, on a digit most of the canvas tall, is 2-3 px wide."""
    out = normalize_digit(rasterize_strokes([[(140, 30), (140, 250)]], 280, 280 / 15))
    widths = (out > 127).sum(axis=1)
    assert set(widths[widths > 0]) <= {2, 3}


def test_position_and_size_do_not_matter():
    seven = [(0, 0), (16, 0), (6, 19)]
    big = rasterize_strokes([[(x * 12 + 30, y * 12 + 20) for x, y in seven]], 280, 24)
    small = rasterize_strokes([[(x * 3 + 200, y * 3 + 210) for x, y in seven]], 280, 6)
    difference = np.abs(normalize_digit(big).astype(int) - normalize_digit(small).astype(int))
    assert difference.mean() < 12


def test_real_mnist_digits_are_unchanged():
    """MNIST digits are already prepared this way: re-normalising leaves almost all untouched."""
    digits = np.load(SAMPLE, allow_pickle=False)["x_train"]
    again = np.stack([normalize_digit(d) for d in digits])
    unchanged = (again == digits).all(axis=(1, 2)).mean()
    assert unchanged >= 0.999, f"only {unchanged:.2%} of the MNIST sample came back unchanged"


def test_rejects_images_that_are_not_two_dimensional():
    with pytest.raises(KerasmlError, match="2-D grayscale"):
        normalize_digit(np.zeros((28, 28, 3), dtype=np.uint8))
    with pytest.raises(KerasmlError, match="2-D grayscale"):
        normalize_digit(np.zeros((0, 5), dtype=np.uint8))


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 60), st.integers(1, 60))))
def test_any_image_fits_the_mnist_box(image):
    out = normalize_digit(image)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert max(_ink_box(out)) <= 20
    if not image.any():
        assert not out.any()


# rasterize_strokes

def test_rasterize_dot_segment_and_canvas_shape():
    dot = rasterize_strokes([[(10, 10)]], (40, 30), 6)
    assert dot.shape == (30, 40) and set(np.unique(dot)) == {0, 255}
    assert _ink_box(dot) == (6, 6)
    assert not rasterize_strokes([], 10, 3).any()
    with pytest.raises(KerasmlError, match="canvas size"):
        rasterize_strokes([], (0, 10), 3)


# prepare_image

def _seven_on_paper(size=200) -> np.ndarray:
    """A dark 7 on light, slightly uneven paper, as a phone photo of a drawing would be."""
    ink = rasterize_strokes([[(40, 40), (150, 40), (80, 170)]], size, size / 15)
    paper = np.full((size, size), 230, dtype=np.int64) + (np.arange(size) % 7)[None, :]
    return np.where(ink > 0, 25, paper).astype(np.uint8)


def test_prepare_image_inverts_dark_ink_and_normalises(tmp_path):
    photo = _seven_on_paper()
    Image.fromarray(photo).save(tmp_path / "seven.png")
    Image.fromarray(photo).convert("RGB").save(tmp_path / "seven.jpg", quality=95)
    reference = normalize_digit(rasterize_strokes([[(40, 40), (150, 40), (80, 170)]], 200, 200 / 15))
    for name in ("seven.png", "seven.jpg"):
        out = prepare_image(tmp_path / name)
        assert out.shape == (28, 28) and out.dtype == np.uint8
        assert max(_ink_box(out)) == 20
        assert np.abs(out.astype(int) - reference.astype(int)).mean() < 10, name


def test_prepare_image_leaves_a_clean_mnist_png_alone(tmp_path):
    digit = np.load(SAMPLE, allow_pickle=False)["x_train"][7]
    Image.fromarray(digit).save(tmp_path / "mnist.png")
    assert np.array_equal(prepare_image(tmp_path / "mnist.png"), digit)


def test_prepare_image_raw_only_resizes(tmp_path):
    white_on_black = np.zeros((56, 56), dtype=np.uint8)
    white_on_black[10:20, 30:34] = 255
    Image.fromarray(white_on_black).save(tmp_path / "raw.png")
    out = prepare_image(tmp_path / "raw.png", raw=True)
    assert out.shape == (28, 28)
    assert _ink_box(out) == (5, 2) and out[5, 15] == 255          # not moved, not rescaled to 20
    assert prepare_image(tmp_path / "raw.png", raw=True, size=(14, 20)).shape == (14, 20)


def test_prepare_image_transparent_background(tmp_path):
    rgba = np.zeros((100, 100, 4), dtype=np.uint8)
    ink = rasterize_strokes([[(50, 10), (50, 90)]], 100, 8) > 0
    rgba[ink] = (0, 0, 0, 255)                                      # black ink, transparent paper
    Image.fromarray(rgba, "RGBA").save(tmp_path / "one.png")
    out = prepare_image(tmp_path / "one.png")
    assert _ink_box(out)[0] == 20 and out.max() == 255


def test_prepare_image_bad_inputs(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(KerasmlError, match="cannot read .*notes.txt as an image"):
        prepare_image(tmp_path / "notes.txt")
    with pytest.raises(KerasmlError, match="does not exist"):
        prepare_image(tmp_path / "missing.png")
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(tmp_path / "ok.png")
    with pytest.raises(KerasmlError, match="--raw"):
        prepare_image(tmp_path / "ok.png", size=(32, 32))


# Sanity: re-normalising the real MNIST test set costs (almost) no accuracy.

@pytest.mark.slow
def test_renormalising_mnist_test_digits_keeps_accuracy(mnist_test, sample_cnn):
    """The real test set (../shared/data/mnist-test, skipped when absent) through normalize_digit."""
    keras = pytest.importorskip("keras")
    started = time.perf_counter()
    x_test, y_test = mnist_test
    model = keras.saving.load_model(sample_cnn)      # small CNN on the 5,000-digit sample, raw pixels in

    renormalised = np.stack([normalize_digit(d) for d in x_test])
    raw_accuracy = model.evaluate(x_test[..., None], y_test, verbose=0)[1]
    new_accuracy = model.evaluate(renormalised[..., None], y_test, verbose=0)[1]
    changed = (renormalised != x_test).any(axis=(1, 2)).mean()
    print(f"MNIST test accuracy: raw {raw_accuracy:.4f}, re-normalised {new_accuracy:.4f}, "
          f"{changed:.2%} of digits changed, {time.perf_counter() - started:.1f} s")
    assert raw_accuracy > 0.9, "the sanity model did not learn; the comparison would mean nothing"
    assert abs(new_accuracy - raw_accuracy) <= 0.003
