"""Big and hostile pictures on the photo path that `kerasml predict`, `kerasml try` and
`prepare_image` share: a big JPEG is decoded at reduced scale and still reads the same; a picture
that decodes to many megapixels is converted in bounded memory; decompression bombs, animations,
EXIF tricks and cut files get one line (an HTTP 4xx from the page), never a traceback."""

from __future__ import annotations

import io
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hostile_images
from kerasml.data import images
from kerasml.errors import KerasmlError
from kerasml.preprocess import prepare_image, prepare_picture

APP_MODEL = Path(__file__).resolve().parents[1] / "ios_app/DigitDemo/DigitClassifier.mlmodel"
BIG = (2200, 2420)               # 5.3 MP: 1/8 scale is 275x303, still above the 256 px working side


@pytest.fixture(scope="module")
def big_seven(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "seven.jpg"
    path.write_bytes(hostile_images.seven_jpeg(BIG, quality=80))
    return path


def read_as(pixels: np.ndarray) -> str:
    from kerasml.runtime import load_model

    model = load_model(APP_MODEL)
    return str(model.labels[int(model.predict_probabilities(pixels[None]).argmax())])


# ------------------------------------------------------------------------ reduced-scale decoding
def test_a_big_jpeg_is_decoded_at_reduced_scale_and_reads_the_same(big_seven):
    scaled = images.open_image(big_seven, min_side=256)
    assert scaled.size == (275, 303) and scaled.info[images.SCALED_FROM] == BIG
    whole = images.open_image(big_seven)
    assert whole.size == BIG and images.SCALED_FROM not in whole.info
    from_scaled, from_whole = prepare_picture(scaled, 28, 28, 1), prepare_picture(whole, 28, 28, 1)
    assert from_scaled.notes[0] == "decoded at reduced scale: 2200x2420 read as 275x303"
    assert from_scaled.notes[1:] == [note.replace("2200x2420", "275x303") for note in from_whole.notes]
    # The same digit: a pixel at the ink's edge may cross the threshold, moving the crop, and so the
    # centring, by one pixel; aligned, the two differ by a few grey levels on average.
    scaled_image, whole_image = from_scaled.image.astype(int), from_whole.image.astype(int)
    aligned = min(np.abs(np.roll(scaled_image, (dy, dx), (0, 1)) - whole_image).mean()
                  for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    assert aligned < 8, aligned
    assert read_as(from_scaled.image) == read_as(from_whole.image) == "7"
    assert np.array_equal(prepare_image(big_seven), from_scaled.image)   # prepare_image takes the same path


@pytest.mark.parametrize("size, min_side, decoded", [
    ((511, 300), 256, (511, 300)),          # half would be 255 px: kept whole
    ((512, 300), 256, (256, 150)),
    ((300, 2048), 256, (38, 256)),          # the longer side decides, whichever it is
    ((2048, 2048), 300, (512, 512)),        # a model taking 300 px keeps 300: a quarter, not an eighth
    ((4100, 100), 256, (513, 13)),
])
def test_the_scale_is_the_smallest_that_keeps_the_working_side(size, min_side, decoded):
    data = hostile_images.encoded(Image.new("RGB", size, (200, 190, 180)), "JPEG")
    picture = images.decode_image(io.BytesIO(data), "test", min_side=min_side)
    assert picture.size == decoded
    assert (images.SCALED_FROM in picture.info) == (decoded != size)


def test_exif_orientation_turns_a_reduced_picture(big_seven):
    turned = hostile_images.with_orientation(Image.open(big_seven), 6)
    picture = images.decode_image(io.BytesIO(turned), "test", min_side=256)
    assert picture.size == (303, 275) and picture.info[images.SCALED_FROM] == (BIG[1], BIG[0])


def test_predict_says_it_decoded_a_big_photo_at_reduced_scale(big_seven):
    from kerasml.checks.predict import predict

    (result,) = predict(APP_MODEL, [big_seven])
    assert result.class_label == "7"
    assert result.notes[0] == "decoded at reduced scale: 2200x2420 read as 275x303", result.notes


def test_an_mpo_is_read_as_its_first_picture():
    first = hostile_images.seven_on_paper((600, 660))
    data = hostile_images.encoded(first, "MPO", save_all=True, append_images=[Image.new("RGB", (60, 66))])
    picture = images.decode_image(io.BytesIO(data), "test", min_side=256)
    assert picture.format == "MPO" and picture.size == (300, 330)


# ------------------------------------------------------------------------------ bounded memory
def test_a_tiny_file_that_decodes_to_many_megapixels_is_read_in_bounded_memory():
    """16 MP of zeros in a 16 kB PNG: NumPy never holds more than the grayscale picture and a band
    (before, the photo path made int64 and float64 copies of the whole picture: 8 bytes a pixel)."""
    side = 4000
    data = hostile_images.png(side, side)
    assert len(data) < 40_000
    tracemalloc.start()
    try:
        prepared = prepare_picture(images.decode_image(io.BytesIO(data), "test", min_side=256), 28, 28, 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not prepared.image.any() and prepared.notes[0] == "scaled down from 4000x4000 to 256x256"
    assert peak < 3 * side * side, f"{peak / 2**20:.0f} MiB"


@pytest.mark.slow
def test_the_exact_shrink_needs_no_dense_matrices():
    """The 256 px shrink sums areas in integers, tile by tile: the same result as the float64
    products of the overlap matrices it replaces, for any shape and any tile size."""
    from kerasml.preprocess import photo
    from kerasml.preprocess.drawing import area_overlaps

    rng = np.random.default_rng(26)
    for _ in range(60):
        h, w = (int(n) for n in rng.integers(1, 400, 2))
        image = rng.integers(0, 256, (h, w), dtype=np.uint8)
        out_h, out_w = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        rows, cols = area_overlaps(h, out_h).astype(np.float64), area_overlaps(w, out_w).astype(np.float64)
        sums = np.rint(rows @ image.astype(np.float64) @ cols.T).astype(np.int64)
        expected = ((2 * sums + h * w) // (2 * h * w)).astype(np.uint8)
        for band in (1 << 20, 7, 500):
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(photo, "BAND_PIXELS", band)
                assert np.array_equal(photo._area_resize(image, out_h, out_w), expected), (h, w, out_h, out_w, band)


def test_transparency_becomes_paper_in_integers_as_it_did_in_floats():
    """Every luma and alpha, on both papers: the integer compositing gives what the float formula
    it replaced gave (the page's fixtures and DigitKit were made with that one)."""
    luma, alpha = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    picture = Image.fromarray(np.stack([luma, luma, luma, alpha], -1).astype(np.uint8), "RGBA")
    for paper in (0, 255):
        floats = np.rint(luma * (alpha / 255.0) + paper * (1 - alpha / 255.0)).astype(np.uint8)
        assert np.array_equal(images._composite(picture, paper), floats)


# ------------------------------------------------------------------------------ hostile files
EXPECTED = {      # name in hostile_images.hostile_cases() -> (HTTP status from the page, words in the line)
    "png header claims 100000x100000": (413, "claims more than 178 megapixels"),
    "png header claims 7000x7000 (49 MP)": (413, "7000x7000 pixels; the limit is 40 megapixels"),
    "jpeg header claims 65000x65000": (413, "claims more than 178 megapixels"),
    "jpeg header claims 8000x6000 (48 MP)": (413, "8000x6000 pixels; the limit is 40 megapixels"),
    "gif of 5000 frames": (400, "has several frames (an animated or multi-page GIF)"),
    "apng of 300 frames": (400, "has several frames (an animated or multi-page PNG)"),
    "webp of 100 frames": (400, "has several frames (an animated or multi-page WEBP)"),
    "tiff of 2000 pages": (400, "not an image format kerasml can read"),
    "exif orientation 9 (invalid)": (200, None),
    "exif orientation 6 (turned)": (200, None),
    "exif orientation of two values": (200, None),
    "exif orientation 65535": (200, None),
    "exif block cut short": (400, "a damaged image"),
    "jpeg cut in half": (400, "a damaged image"),
    "png cut in half": (400, "a damaged image"),
}


@pytest.fixture(scope="module")
def hostile() -> dict[str, bytes]:
    return hostile_images.hostile_cases()


@pytest.mark.slow
def test_every_hostile_case_is_expected(hostile):
    assert sorted(hostile) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_files_get_one_line(hostile, name, tmp_path):
    status, words = EXPECTED[name]
    path = tmp_path / "picture"
    path.write_bytes(hostile[name])
    if status == 200:
        assert prepare_image(path).shape == (28, 28)
        return
    with pytest.raises(KerasmlError) as refused:
        prepare_image(path)
    line = str(refused.value)
    assert words in line and "\n" not in line and len(line) < 250, line
    assert isinstance(refused.value, images.ImageTooLarge) == (status == 413)


def test_the_page_answers_hostile_uploads_with_one_line(hostile, tmp_path):
    pytest.importorskip("httpx2", reason="FastAPI's TestClient needs httpx2")
    import try_models
    from fastapi.testclient import TestClient

    from kerasml.web.app import create_app
    from kerasml.web.classifier import TryModel

    client = TestClient(create_app(TryModel(try_models.digit_model(tmp_path))))
    for name, (status, words) in EXPECTED.items():
        response = client.post("/api/read/photo", content=hostile[name])
        assert response.status_code == status, (name, response.text)
        if words:
            assert words in response.json()["detail"] and "\n" not in response.json()["detail"], name


def test_pillows_own_bomb_warning_is_not_printed():
    """Between 89 and 179 megapixels Pillow warns on stderr before kerasml's limit refuses the file:
    `kerasml predict` would print two lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(images.ImageTooLarge, match="10000x10000 pixels"):
            images.decode_image(io.BytesIO(hostile_images.png_claiming(10_000, 10_000)), "test")
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
