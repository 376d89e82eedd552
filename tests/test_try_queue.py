"""`kerasml try` under load: photos are read by a bounded pool of workers behind a bounded queue.
Beyond it the server answers 503 with Retry-After instead of growing; a client that leaves
mid-upload, or while its photo waits, costs nothing afterwards; drawings and the model card never
wait for photos. A tiny pool (one worker, no queue) makes each case exact; `make load` measures
the real thing (bench/load.py)."""

from __future__ import annotations

import asyncio
import io
import threading
import time

import numpy as np
import pytest

import try_models

pytest.importorskip("fastapi", reason="kerasml try needs fastapi (pip install fastapi uvicorn)")
pytest.importorskip("httpx2", reason="FastAPI's TestClient needs httpx2")

from fastapi.testclient import TestClient  # noqa: E402

from kerasml.web.app import create_app  # noqa: E402
from kerasml.web.classifier import TryModel  # noqa: E402
from kerasml.web.work import PhotoWork  # noqa: E402

WAIT_S = 10                      # far longer than any step here takes; a hang fails instead of blocking


def png_of_a_one() -> bytes:
    from PIL import Image

    paper = np.full((120, 90), 235, np.uint8)
    paper[25:95, 40:52] = 20
    buffer = io.BytesIO()
    Image.fromarray(paper).save(buffer, format="PNG")
    return buffer.getvalue()


PHOTO = png_of_a_one()


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return try_models.digit_model(tmp_path_factory.mktemp("queue"))


class Spy:
    """Stands in for TryModel.read_photo: counts the photos read, and can hold them until released."""

    def __init__(self, model: TryModel, hold: bool = False):
        self.read, self.started, self.calls = model.read_photo, threading.Event(), 0
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, data: bytes):
        self.calls += 1
        self.started.set()
        assert self.release.wait(WAIT_S), "the test never released the held photo"
        return self.read(data)


def tiny_app(digits, workers=1, queue=0, hold=False):
    model = TryModel(digits)
    spy = Spy(model, hold)
    model.read_photo = spy
    work = PhotoWork(workers=workers, queue=queue)
    return create_app(model, work=work), work, spy


def until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


async def until_async(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


def idle(work: PhotoWork) -> bool:
    return work.counts() == {"arriving": 0, "waiting": 0, "working": 0}


# ------------------------------------------------------------------------------ a full queue: 503
def test_beyond_the_queue_the_server_answers_503_with_retry_after(digits):
    app, work, spy = tiny_app(digits, workers=1, queue=0, hold=True)
    with TestClient(app) as client:
        first: dict = {}
        reader = threading.Thread(target=lambda: first.update(r=client.post("/api/read/photo", content=PHOTO)))
        reader.start()
        assert spy.started.wait(WAIT_S)
        assert work.counts()["working"] == 1
        refused = client.post("/api/read/photo", content=PHOTO)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == str(work.retry_after)
        assert refused.json()["detail"].startswith("the server is busy with 1 photos"), refused.json()
        assert "\n" not in refused.json()["detail"]
        # Drawings and the model card do not wait for the photo worker.
        assert client.get("/api/model").json()["limits"]["photo_workers"] == 1
        drawing = client.post("/api/read/strokes", json={"canvas_side": 1, "strokes": [[[0.5, 0.15], [0.5, 0.85]]]})
        assert drawing.status_code == 200
        assert client.get("/api/load").json() == {"workers": 1, "queue": 0, "arriving": 0, "waiting": 0, "working": 1}
        spy.release.set()
        reader.join(WAIT_S)
        assert first["r"].status_code == 200 and first["r"].json()["kind"] in ("answer", "unsure")
        assert client.post("/api/read/photo", content=PHOTO).status_code == 200     # the place is free again
    assert spy.calls == 2 and idle(work)


def test_the_queue_holds_what_fits(digits):
    """One worker and two places in the queue: three photos at once are all read, none refused."""
    app, work, spy = tiny_app(digits, workers=1, queue=2, hold=True)
    with TestClient(app) as client:
        answers: list = []
        posts = [threading.Thread(target=lambda: answers.append(client.post("/api/read/photo", content=PHOTO)))
                 for _ in range(3)]
        for post in posts:
            post.start()
        until(lambda: work.counts() == {"arriving": 0, "waiting": 2, "working": 1}, "one working, two waiting")
        spy.release.set()
        for post in posts:
            post.join(WAIT_S)
    assert [answer.status_code for answer in answers] == [200, 200, 200] and spy.calls == 3 and idle(work)


def test_a_refused_or_damaged_photo_frees_its_place(digits):
    app, work, _ = tiny_app(digits, workers=1, queue=0)
    with TestClient(app) as client:
        assert client.post("/api/read/photo", content=b"not an image").status_code == 400
        assert client.post("/api/read/photo", content=b"0" * (11 * 1024 * 1024)).status_code == 413
        assert client.post("/api/read/photo", content=PHOTO).status_code == 200
    assert idle(work)


# --------------------------------------------------------------------- clients that go away early
SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
         "path": "/api/read/photo", "raw_path": b"/api/read/photo", "query_string": b"", "root_path": "",
         "headers": [(b"host", b"testserver"), (b"content-type", b"image/png")],
         "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}


async def post_photo(app, chunks: list[bytes], finished: bool, leave: asyncio.Event | None = None) -> dict:
    """POST the chunks straight to the ASGI app, as a server would pass them on. `finished`: whether
    the last chunk ends the body. Then the client disconnects as soon as `leave` is set (else once
    it has its answer). Returns the answer's status (None when there was none)."""
    messages = [{"type": "http.request", "body": chunk, "more_body": not finished or i < len(chunks) - 1}
                for i, chunk in enumerate(chunks)]
    answered = asyncio.Event()
    answer: dict = {"status": None}

    async def receive():
        if messages:
            return messages.pop(0)
        waits = [asyncio.ensure_future(answered.wait())] + ([asyncio.ensure_future(leave.wait())] if leave else [])
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif not message.get("more_body"):
            answered.set()

    await app(dict(SCOPE, headers=list(SCOPE["headers"])), receive, send)
    return answer


def test_a_client_that_disconnects_mid_upload_costs_nothing_afterwards(digits):
    app, work, spy = tiny_app(digits, workers=1, queue=0)

    async def scenario():
        leave = asyncio.Event()
        upload = asyncio.ensure_future(post_photo(app, [PHOTO[:100]], finished=False, leave=leave))
        await until_async(lambda: work.counts()["arriving"] == 1, "the upload to start")
        leave.set()                                   # the client goes away with most of its photo unsent
        await asyncio.wait_for(upload, WAIT_S)
        assert idle(work), work.counts()
        return await post_photo(app, [PHOTO], finished=True)   # the only place is free again

    assert asyncio.run(scenario())["status"] == 200
    assert spy.calls == 1 and idle(work)              # only the second photo was ever read


def test_a_client_that_leaves_while_waiting_is_never_worked_on(digits):
    app, work, spy = tiny_app(digits, workers=1, queue=1, hold=True)

    async def scenario():
        first = asyncio.ensure_future(post_photo(app, [PHOTO], finished=True))
        await until_async(lambda: work.counts()["working"] == 1, "the first photo to be worked on")
        leave = asyncio.Event()
        second = asyncio.ensure_future(post_photo(app, [PHOTO], finished=True, leave=leave))
        await until_async(lambda: work.counts()["waiting"] == 1, "the second photo to wait")
        leave.set()
        await until_async(lambda: work.counts()["waiting"] == 0, "the second photo to leave the queue")
        spy.release.set()
        return await asyncio.wait_for(asyncio.gather(first, second), WAIT_S)

    first, second = asyncio.run(scenario())
    assert first["status"] == 200 and second["status"] == 499
    assert spy.calls == 1 and idle(work)              # the photo that left was never decoded


def test_the_pool_is_sized_to_the_machine():
    import os

    from kerasml.web import work

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert work.WORKERS == max(1, min(cores, 4)) and work.QUEUE >= 25      # make load's 25 uploads fit
    assert PhotoWork().workers == work.WORKERS
    with pytest.raises(ValueError):
        PhotoWork(workers=0)
