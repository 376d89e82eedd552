"""`kerasml try` in a real browser: Debian's headless Chromium, driven by Selenium, draws a digit on
the page served over a real socket, and the page must show what kerasml makes of those strokes.

Skips where Chromium or its driver is missing (`apt-get install chromium chromium-driver`; `.ci/run`
installs them). Set KERASML_TRY_SCREENSHOT=docs/try.png to refresh the README's screenshot.
"""

from __future__ import annotations

import base64
import http.client
import io
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import try_models
from kerasml.app.reading import sketch_raster
from kerasml.preprocess import normalize_digit

pytest.importorskip("fastapi", reason="kerasml try needs fastapi (pip install fastapi uvicorn)")
pytest.importorskip("uvicorn", reason="kerasml try needs uvicorn (pip install uvicorn)")

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# A "7" in unit coordinates (the canvas side is 1): a bar, then a long diagonal.
SEVEN = [(0.25, 0.22), (0.45, 0.21), (0.7, 0.22), (0.66, 0.35), (0.58, 0.5), (0.5, 0.66), (0.44, 0.8)]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return try_models.digit_model(tmp_path_factory.mktemp("try_browser"))


@pytest.fixture(scope="module")
def live(model_path):
    """The page served by uvicorn on a free loopback port, in a thread, as `kerasml try` serves it."""
    from kerasml.web.server import make_server

    server, sock, url = make_server(model_path, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield url
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"headless browser test: needs {CHROMIUM} and {CHROMEDRIVER} "
                    "(apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1000,720", "--force-device-scale-factor=1", "--hide-scrollbars"):
        options.add_argument(argument)
    # The driver is Debian's, given by path, so Selenium never looks one up or downloads one.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def text_of(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def wait_for(condition, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def draw(driver, points, kind: str = "mouse"):
    """One stroke with a mouse, pen or finger ("mouse", "pen", "touch"): pointerdown, pointermoves,
    pointerup, as a hand would make them."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    pad = driver.find_element("id", "pad")
    side = pad.rect["width"]
    offsets = [(round((x - 0.5) * side), round((y - 0.5) * side)) for x, y in points]   # from the centre
    actions = ActionChains(driver, duration=10, devices=[PointerInput(kind, kind)])
    actions.move_to_element_with_offset(pad, *offsets[0]).click_and_hold()
    for (x0, y0), (x1, y1) in zip(offsets, offsets[1:]):
        for step in range(1, 5):                 # several moves per segment, as a hand would make
            actions.move_to_element_with_offset(pad, x0 + (x1 - x0) * step // 4, y0 + (y1 - y0) * step // 4)
    actions.release().perform()
    return side


def decode_png(data_url: str) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def test_a_digit_drawn_in_chromium_is_read_as_kerasml_reads_it(browser, live, model_path, tmp_path):
    from kerasml.runtime import load_model

    browser.get(live)
    wait_for(lambda: text_of(browser, "headline") == "Draw a digit", "the page to load the model card")
    assert "digits.mlmodel" in text_of(browser, "model-name")
    assert "89.88%" in text_of(browser, "card") and "kerasml tests" in text_of(browser, "card")

    side = draw(browser, SEVEN)
    headline = wait_for(lambda: (t := text_of(browser, "headline")) != "Draw a digit" and t, "a reading")
    strokes = browser.execute_script("return window.kerasmlTry.strokes()")
    assert len(strokes) == 1 and len(strokes[0]) >= len(SEVEN)
    for x, y in SEVEN:                            # the page recorded the drag where it happened
        assert min(abs(px - x) + abs(py - y) for px, py in strokes[0]) < 2.5 / side

    # What kerasml.preprocess makes of the same strokes, as DigitKit's Sketch does.
    expected = normalize_digit(sketch_raster([strokes[0]], 1.0))
    preview = decode_png(browser.find_element("id", "model-input").get_attribute("src"))
    assert np.array_equal(preview, expected)

    probabilities = load_model(model_path).predict_probabilities(expected[None])[0]
    best = str(int(probabilities.argmax()))
    assert best == "7", "the test model should read this 7"
    assert headline == f"It's a {best}"
    shown = [item.text.split("\n") for item in browser.find_elements("css selector", "#guesses li")]
    assert [row[0] for row in shown] == [str(i) for i in np.argsort(-probabilities)[:3]]
    assert shown[0][1] == f"{round(float(probabilities.max()) * 100)}%"

    screenshot = Path(os.environ.get("KERASML_TRY_SCREENSHOT") or tmp_path / "try.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshot))

    browser.find_element("id", "undo").click()
    wait_for(lambda: text_of(browser, "headline") == "Draw a digit", "Undo to empty the canvas")
    draw(browser, [(0.5, 0.5), (0.51, 0.5)], kind="touch")
    wait_for(lambda: text_of(browser, "headline") == "No digit: draw it larger", "a tap to be refused")
    draw(browser, [(0.5, 0.2), (0.5, 0.8)], kind="pen")                   # a tap and a "1"
    wait_for(lambda: text_of(browser, "headline") not in ("No digit: draw it larger", ""), "the pen stroke")
    strokes = browser.execute_script("return window.kerasmlTry.strokes()")
    assert len(strokes) == 2
    both = normalize_digit(sketch_raster(strokes, 1.0))
    wait_for(lambda: np.array_equal(decode_png(browser.find_element("id", "model-input").get_attribute("src")), both),
             "the preview of both strokes")
    browser.find_element("id", "clear").click()
    wait_for(lambda: text_of(browser, "headline") == "Draw a digit", "Clear")
    assert not browser.find_elements("css selector", "#guesses li")


def test_a_photo_chosen_in_chromium_shows_its_preparation(browser, live, tmp_path):
    from PIL import Image

    paper = np.full((160, 120), 240, np.uint8)
    paper[30:130, 55:68] = 15
    path = tmp_path / "one.png"
    Image.fromarray(paper).save(path)
    browser.get(live)
    wait_for(lambda: text_of(browser, "headline") == "Draw a digit", "the page")
    browser.find_element("id", "tab-photo").click()
    browser.find_element("id", "file").send_keys(str(path))
    names = wait_for(lambda: [f.text for f in browser.find_elements("css selector", "#steps figcaption")],
                     "the preparation steps")
    assert names[0] == "grayscale" and names[-1] == "centred" and "cropped" in names, names
    assert "inverted" in text_of(browser, "notes")
    assert text_of(browser, "headline") != "Draw a digit"

    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(path.read_bytes()[:100])
    browser.find_element("id", "file").send_keys(str(damaged))
    wait_for(lambda: text_of(browser, "headline") == "The photo was not read", "the damaged file's error")
    assert "damaged image" in text_of(browser, "error")
    assert not browser.find_elements("css selector", "#steps figure")

    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\0" * (11 * 1024 * 1024))
    browser.find_element("id", "file").send_keys(str(huge))
    wait_for(lambda: "the limit is 10 MB" in text_of(browser, "error"), "the size limit, before sending")


def raw_get(url: str, path: str, host: str | None = None) -> tuple[int, bytes]:
    """A GET over a real socket, sent as written: no client-side normalisation of the path."""
    address, port = url.split("//")[1].rstrip("/").split(":")
    connection = http.client.HTTPConnection(address, int(port), timeout=10)
    connection.request("GET", path, headers={"Host": host} if host else {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


@pytest.mark.parametrize("path", ["/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py",
                                  "/static/%2e%2e%2f%2e%2e%2fcli.py", "/static/..%5capp.py",
                                  "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/../../pyproject.toml"])
def test_no_file_outside_the_static_folder_is_served(live, path):
    status, body = raw_get(live, path)
    assert status == 404 and b"import" not in body and b"root:" not in body


def test_on_loopback_only_its_own_names_are_served(live):
    """A web page elsewhere cannot reach the server by pointing a DNS name at 127.0.0.1."""
    assert raw_get(live, "/api/model", host="attacker.example")[0] == 400
    for name in ("localhost", "127.0.0.1"):
        assert raw_get(live, "/api/model", host=name)[0] == 200
