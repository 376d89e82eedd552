"""`kerasml try`'s server through FastAPI's test client: every route and every error path, and proof
that it reads drawings with the iOS app's algorithm and policy (DigitKit's fixtures and constants)."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

import try_models
from kerasml.errors import KerasmlError
from kerasml.preprocess import normalize_digit, prepare_image, rasterize_sketch

pytest.importorskip("fastapi", reason="kerasml try needs fastapi (pip install fastapi uvicorn)")
pytest.importorskip("httpx2", reason="FastAPI's TestClient needs httpx2")

from fastapi.testclient import TestClient  # noqa: E402

from kerasml.app import reading  # noqa: E402
from kerasml.web import photo  # noqa: E402
from kerasml.web.app import STATIC, create_app  # noqa: E402
from kerasml.web.classifier import TryModel  # noqa: E402
from kerasml.web.schemas import MAX_POINTS, MAX_POINTS_PER_STROKE, MAX_STROKES, MAX_UPLOAD_BYTES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONTRACT = REPO / "ios_app" / "app-contract.json"
FIXTURES = json.loads((REPO / "tests" / "fixtures" / "digits.json").read_text())
VERTICAL_ONE = [[[0.5, 0.15], [0.5, 0.85]]]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("try_models")
    undecided = try_models.classifier_spec(28, try_models.GRAYSCALE, list(range(10)),
                                           np.zeros((10, 784), np.float32), np.zeros(10, np.float32))
    return {"digits": try_models.digit_model(folder), "colours": try_models.rgb_model(folder),
            "regressor": try_models.regressor_model(folder),
            "undecided": try_models.save(undecided, folder / "undecided.mlmodel")}


@pytest.fixture(scope="module")
def client(models) -> TestClient:
    return TestClient(create_app(TryModel(models["digits"])))


@pytest.fixture(scope="module")
def colour_client(models) -> TestClient:
    return TestClient(create_app(TryModel(models["colours"])))


def pixels_of(data_url: str) -> np.ndarray:
    from PIL import Image
    assert data_url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def in_order(names: list[str], wanted: list[str]) -> bool:
    """Whether `wanted` appear in `names` in this order (other steps may come between)."""
    remaining = iter(names)
    return all(any(name == step for name in remaining) for step in wanted)


def png_bytes(pixels: np.ndarray, mode: str | None = None) -> bytes:
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def strokes_request(client, strokes, side=1.0):
    return client.post("/api/read/strokes", json={"canvas_side": side, "strokes": strokes})


# ------------------------------------------------------------------------- the app's policy, once
def test_policy_is_the_app_contracts():
    """The thresholds, stroke rule and words are the app's: read from the contract kerasml ships,
    which is the app's own file (DigitKit decodes the same one)."""
    from kerasml.app.contract import bundled_contract, load_contract

    if not CONTRACT.is_file():
        pytest.skip("ios_app/app-contract.json is not in this checkout")
    assert bundled_contract() == load_contract(CONTRACT.parent)
    contract = json.loads(CONTRACT.read_text())
    assert contract["reading"] == {"minimum_confidence": reading.MINIMUM_CONFIDENCE,
                                   "minimum_ink_extent": reading.MINIMUM_INK_EXTENT, "top": reading.TOP}
    assert reading.LINE_WIDTH_FRACTION == 1 / contract["drawing"]["screen_stroke_divisor"]
    drawing = contract["drawing"]
    thin = [[(0.5, 0.1), (0.5, 0.9)]]
    assert np.array_equal(reading.sketch_raster(thin, 1.0), rasterize_sketch(
        thin, 1.0, drawing["raster_side"], drawing["stroke_divisor"], drawing["minimum_stroke"]))
    words = contract["wording"]
    assert reading.Reading(reading.EMPTY).headline() == words["empty_drawing"]
    assert reading.Reading(reading.EMPTY).headline(photo=True) == words["no_ink"]
    assert reading.Reading(reading.TOO_SMALL).headline() == words["too_small"]
    assert reading.Reading(reading.UNSURE).headline() == words["unsure"]
    assert reading.Reading(reading.ANSWER, [("7", 0.9)]).headline() == words["digit"].format(label="7")
    assert reading.Reading(reading.UNSURE).headline("drawing") == words["unsure"].replace("digit", "drawing")


def test_ranking_is_digitkits():
    ranked = reading.rank([0.2, 0.2, float("nan"), 0.6, 0.2], ["10", "9", "a", "b", "x"], count=5)
    assert ranked == [("b", 0.6), ("9", 0.2), ("10", 0.2), ("x", 0.2), ("a", 0.0)]
    assert reading.judge(ranked[:3]).kind == reading.ANSWER
    assert reading.judge([("3", 0.59), ("8", 0.3)]).kind == reading.UNSURE
    assert reading.judge([]).kind == reading.UNSURE


@pytest.mark.parametrize("case", FIXTURES["stroke_cases"], ids=lambda case: case["name"])
def test_drawings_are_prepared_as_the_shared_fixtures_say(client, case):
    """DigitKit's `swift test` checks the same fixtures: the page's model input is the app's."""
    side = case["canvas_side"]
    answer = strokes_request(client, case["strokes"], side).json()
    expected = np.array(case["expected"], np.uint8)
    if answer["kind"] in ("empty", "too_small"):
        assert answer["model_input"] is None and answer["predictions"] == []
        assert case["name"] in ("empty", "dot")
    else:
        assert np.array_equal(pixels_of(answer["model_input"]), expected)


# ------------------------------------------------------------------------------------ the routes
def test_model_card(client):
    card = client.get("/api/model").json()
    assert card["name"] == "digits.mlmodel" and card["mode"] == "drawing" and card["noun"] == "digit"
    assert card["labels"] == [str(d) for d in range(10)]
    assert card["input"] == "image: 28x28 grayscale"
    assert card["author"] == "kerasml tests" and card["license"] == "MIT" and card["version"] == "1.0"
    assert card["test_accuracy"] == pytest.approx(0.8988) and card["dataset"] == "mnist-sample"
    assert card["policy"]["minimum_confidence"] == reading.MINIMUM_CONFIDENCE
    assert card["limits"]["max_upload_bytes"] == MAX_UPLOAD_BYTES


def test_a_drawn_digit_is_read_with_the_runtime(client, models):
    from kerasml.runtime import load_model

    answer = strokes_request(client, VERTICAL_ONE).json()
    expected_input = normalize_digit(reading.sketch_raster(VERTICAL_ONE, 1.0))
    assert np.array_equal(pixels_of(answer["model_input"]), expected_input)
    probabilities = load_model(models["digits"]).predict_probabilities(expected_input[None])[0]
    best = [str(i) for i in np.argsort(-probabilities)[:3]]
    assert [guess["label"] for guess in answer["predictions"]] == best
    assert answer["predictions"][0]["probability"] == pytest.approx(float(probabilities.max()), abs=1e-6)
    assert answer["kind"] == "answer" and answer["headline"] == "It's a 1"


def test_empty_and_speck_are_not_sent_to_the_model(client):
    assert strokes_request(client, []).json() == {"kind": "empty", "headline": "Draw a digit",
                                                  "predictions": [], "model_input": None}
    tap = strokes_request(client, [[[0.5, 0.5]]]).json()
    assert tap["kind"] == "too_small" and tap["headline"] == "No digit: draw it larger"


def test_an_unsure_model_says_no_digit(models):
    client = TestClient(create_app(TryModel(models["undecided"])))
    answer = strokes_request(client, VERTICAL_ONE).json()
    assert answer["kind"] == "unsure" and answer["headline"] == "No digit recognised"
    assert [g["label"] for g in answer["predictions"]] == ["0", "1", "2"]     # ties: smaller label first
    assert answer["model_input"]


@pytest.mark.parametrize("body, problem", [
    ({"canvas_side": 1, "strokes": [[[0.5, 0.5]]] * (MAX_STROKES + 1)}, "strokes: List should have at most"),
    ({"canvas_side": 1, "strokes": [[[0.5, 0.5]] * (MAX_POINTS_PER_STROKE + 1)]}, "strokes.0: List should have at most"),
    ({"canvas_side": 1, "strokes": [[[0.5, 0.5]] * 4000] * 6}, f"Value error, the drawing has 24,000 points; the limit is {MAX_POINTS:,}"),
    ({"canvas_side": 0, "strokes": []}, "canvas_side: Input should be greater than 0"),
    ({"canvas_side": 1, "strokes": [[]]}, "strokes.0: List should have at least 1"),
    ({"canvas_side": 1, "strokes": [[[0.5]]]}, "strokes.0.0.1: Field required"),
    ({"canvas_side": 1, "strokes": [[[1e9, 0.5]]]}, "strokes.0.0.0: Input should be less than or equal"),
    ({"strokes": []}, "canvas_side: Field required"),
])
def test_bad_strokes_get_one_line(client, body, problem):
    response = client.post("/api/read/strokes", json=body)
    assert response.status_code == 422 and response.json()["detail"].startswith(problem), response.json()


def test_non_numbers_and_broken_json_are_refused(client):
    response = client.post("/api/read/strokes", content=b'{"canvas_side": 1, "strokes": [[[NaN, 1]]]}',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "finite" in response.json()["detail"]
    response = client.post("/api/read/strokes", content=b'{"canvas_side": 1, "strokes": [[',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "JSON" in response.json()["detail"]


def test_oversized_bodies_are_refused_while_they_stream(client):
    declared = client.post("/api/read/photo", content=b"0" * (MAX_UPLOAD_BYTES + 1))
    assert declared.status_code == 413 and declared.text == "Content Too Large"   # FastAPI's own answer

    def chunks():                                     # no Content-Length: counted as it arrives
        for _ in range(11):
            yield b"0" * (1024 * 1024)

    streamed = client.post("/api/read/photo", content=chunks())
    assert streamed.status_code == 413 and "larger than 10 MB" in streamed.json()["detail"]
    strokes = client.post("/api/read/strokes", content=chunks(), headers={"Content-Type": "application/json"})
    assert strokes.status_code == 413


# ---------------------------------------------------------------------------------------- photos
def test_a_photo_is_prepared_as_kerasml_predict_prepares_it(client, tmp_path):
    paper = np.full((120, 90), 235, np.uint8)
    paper[25:95, 40:52] = 20                                      # a dark "1" on light paper
    data = png_bytes(paper)
    answer = client.post("/api/read/photo", content=data, headers={"Content-Type": "image/png"}).json()
    names = [step["name"] for step in answer["steps"]]
    assert in_order(names, ["grayscale", "illumination corrected", "cropped", "centred"]), names
    assert any("inverted" in note for note in answer["notes"]), answer["notes"]
    (tmp_path / "one.png").write_bytes(data)
    assert np.array_equal(pixels_of(answer["model_input"]), prepare_image(tmp_path / "one.png"))
    assert np.array_equal(pixels_of(answer["steps"][-1]["image"]), prepare_image(tmp_path / "one.png"))
    assert answer["kind"] in ("answer", "unsure") and len(answer["predictions"]) == 3


def test_transparent_and_blank_photos(client, tmp_path):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[10:54, 30:36] = (0, 0, 0, 255)                           # black ink on a transparent sheet
    data = png_bytes(rgba, "RGBA")
    answer = client.post("/api/read/photo", content=data).json()
    (tmp_path / "clear.png").write_bytes(data)
    assert np.array_equal(pixels_of(answer["model_input"]), prepare_image(tmp_path / "clear.png"))
    blank = client.post("/api/read/photo", content=png_bytes(np.full((40, 40), 255, np.uint8))).json()
    assert blank["kind"] == "empty" and blank["notes"]
    assert blank["headline"] == "No digit found in the photo"


def test_big_photos_are_shown_small_but_read_whole(client):
    big = np.full((1200, 900), 230, np.uint8)
    big[300:900, 400:520] = 10
    answer = client.post("/api/read/photo", content=png_bytes(big)).json()
    assert max(pixels_of(answer["steps"][0]["image"]).shape) == photo.SHOWN_SIDE
    assert pixels_of(answer["model_input"]).shape == (28, 28)


@pytest.mark.parametrize("data, status, problem", [
    (b"", 400, "the upload is empty"),
    (b"not an image at all", 400, "not an image format"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, 400, "not an image format"),
])
def test_bad_uploads_get_one_line(client, data, status, problem):
    response = client.post("/api/read/photo", content=data)
    assert response.status_code == status and problem in response.json()["detail"]


def test_a_truncated_photo_is_damaged(client):
    data = png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))
    response = client.post("/api/read/photo", content=data[: len(data) // 2])
    assert response.status_code == 400 and "damaged image" in response.json()["detail"]


def test_too_many_pixels_are_refused_before_decoding(client, monkeypatch):
    monkeypatch.setattr(photo, "MAX_PIXELS", 1000)
    response = client.post("/api/read/photo", content=png_bytes(np.zeros((40, 40), np.uint8)))
    assert response.status_code == 413 and "40x40 pixels" in response.json()["detail"]


# -------------------------------------------------------------------------- other kinds of model
def test_a_colour_model_takes_photos_not_drawings(colour_client):
    card = colour_client.get("/api/model").json()
    assert card["mode"] == "photo" and card["labels"] == ["red", "green", "blue"]
    assert card["input"] == "image: 8x8 rgb" and card["noun"] == "image" and card["test_accuracy"] is None
    refused = strokes_request(colour_client, VERTICAL_ONE)
    assert refused.status_code == 400 and "not drawings" in refused.json()["detail"]
    green = np.zeros((30, 50, 3), np.uint8)
    green[..., 1] = 200
    answer = colour_client.post("/api/read/photo", content=png_bytes(green)).json()
    assert answer["headline"] == "Best guess: green" and answer["kind"] == "answer"
    assert [step["name"] for step in answer["steps"]] == ["photo", "resized to 8x8"]
    assert pixels_of(answer["model_input"]).shape == (8, 8, 3)


def test_a_model_that_is_not_an_image_classifier_is_refused(models):
    with pytest.raises(KerasmlError, match="is not an image classifier"):
        TryModel(models["regressor"])


# ---------------------------------------------------------------------------------- static files
def test_the_page_and_its_files(client):
    page = client.get("/")
    assert page.status_code == 200 and '<canvas id="pad"' in page.text
    for name in ("app.js", "style.css", "index.html"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/docs").status_code == 404          # Swagger UI would load from a CDN


def test_nothing_on_the_page_comes_from_the_internet():
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"https?://|//cdn|@import|fonts\.googleapis", text), path.name
