"""`make load`: `kerasml try` under load on loopback, each figure of issue 26 beside its target.

It starts the real server (`python -m kerasml try MODEL --port 0 --no-browser`: uvicorn, the page's
code path, 127.0.0.1 only), samples the server's memory throughout (RSS every 10 ms, and the
kernel's high-water mark around single requests), and measures:

  1. one 40-megapixel JPEG of a 7 on paper (6000x6600, about 0.7 MB, made here): time and memory;
  2. 600 drawings from 24 clients plus 24 concurrent uploads of that photo, while a 9 MB photo
     trickles in and the model card is asked every 0.25 s: errors, drawing p50/p99, card latency,
     server memory; then slow uploads hold every photo place until the next one gets 503 with
     Retry-After, and disconnect mid-upload: the queue empties and a photo is read again at once;
  3. hostile files (header bombs, tiny files of 40 MP, animations, EXIF tricks, cut files), then a
     fuzz of a few thousand mutated pictures of every format, bounded in time: each a one-line 4xx
     or a reading, never a 5xx or a dropped connection, the server's memory bounded throughout.

Writes bench/load.json and bench/load.md (--out DIR elsewhere, --name for the file name); exits 1
when a figure misses its target. The model: --model (a Core AI .aimodel, run by Apple's runtime,
too: `make load ARGS="--model ios_app/DigitDemo/CoreAIModels/DigitClassifier.aimodel --name
load-aimodel"`), else models/digits.mlmodel when present, else the app's shipped model, else a
softmax regression written on the spot (tests/try_models.py). About 3 minutes on 2 busy cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]      # kerasml; hostile_images and try_models

import hostile_images  # noqa: E402  (tests/hostile_images.py)

MIB = 2 ** 20
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
DRAWINGS, DRAWING_CLIENTS, PHOTO_UPLOADS = 600, 24, 24
TRICKLE_SECONDS = 12.0           # the 9 MB upload arrives over this long, spanning the load
CARD_EVERY = 0.25
FUZZ_CASES, FUZZ_SECONDS, FUZZ_CLIENTS = 3000, 120.0, 4
LIMIT_SECONDS = 900              # the whole run; past it the server is killed and the figures fail
TARGETS = {                      # issue 26
    "photo_seconds": 1.5, "photo_mib": 300, "drawing_p99": 1.5, "card_seconds": 1.0, "server_gib": 1.5}


# ------------------------------------------------------------------------------------ the server
class Server:
    """`kerasml try` in its own process, and its memory: RSS sampled every 10 ms in a thread."""

    def __init__(self, model: Path):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen([sys.executable, "-m", "kerasml", "try", str(model), "--port", "0",
                                         "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=env)
        line = self.process.stdout.readline()
        if not line.startswith("kerasml try: http://127.0.0.1:"):
            raise SystemExit(f"the server did not start: {line}{self.process.stderr.read()}")
        self.port = int(line.split()[2].rstrip("/").rsplit(":", 1)[1])
        self.statm = Path(f"/proc/{self.process.pid}/statm")
        if not self.statm.exists():                      # not Linux: psutil, where installed
            import psutil

            self.ps = psutil.Process(self.process.pid)
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.rss()))
            except Exception:      # the process has ended
                return
            time.sleep(0.01)

    def rss(self) -> int:
        if self.statm.exists():
            return int(self.statm.read_text().split()[1]) * PAGE
        return self.ps.memory_info().rss

    def peak_between(self, start: float, end: float) -> int:
        return max((rss for at, rss in self.samples if start <= at <= end), default=self.rss())

    def reset_high_water(self) -> bool:
        """Reset the kernel's peak RSS of the server (Linux: clear_refs 5), so VmHWM is the peak since."""
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def high_water(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def stop(self) -> int:
        self._stop.set()
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return -9


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            connection: http.client.HTTPConnection | None = None, timeout: float = 120):
    """(status, headers, body, seconds); a new connection unless one is given (then kept open)."""
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data, time.perf_counter() - started
    finally:
        if connection is None:
            conn.close()


def post_photo(port: int, data: bytes, connection=None):
    return request(port, "POST", "/api/read/photo", data, {"Content-Type": "image/jpeg"}, connection)


def one_line_detail(status: int, body: bytes) -> bool:
    try:
        detail = json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(detail, str) and bool(detail) and "\n" not in detail and status in (400, 413, 503)


# ------------------------------------------------------------------------- 1. one 40 MP photo
def one_photo(server: Server, photo: bytes, idle: int, runs: int = 3) -> dict:
    times, peaks, kinds = [], [], []
    for _ in range(runs):
        exact = server.reset_high_water()
        start = time.monotonic()
        status, _, body, seconds = post_photo(server.port, photo)
        time.sleep(0.05)                                   # the last samples
        peak = server.high_water() if exact else None
        peak = max(peak or 0, server.peak_between(start, time.monotonic()))
        times.append(seconds)
        peaks.append(peak - idle)
        kinds.append((status, json.loads(body).get("predictions", [{}])[0].get("label") if status == 200 else body[:80]))
    return {"seconds": times, "mib_above_idle": [p / MIB for p in peaks], "answers": kinds}


# ---------------------------------------------------------------------------------- 2. the load
def drawings(count: int) -> list[dict]:
    """The shared fixtures' drawings, each stroke densified to pointer-event spacing and jittered."""
    cases = [c for c in json.loads((REPO / "tests/fixtures/digits.json").read_text())["stroke_cases"] if c["strokes"]]
    rng = random.Random(26)
    made = []
    for i in range(count):
        case = cases[i % len(cases)]
        side = case["canvas_side"]
        strokes = []
        for stroke in case["strokes"]:
            points = [stroke[0]]
            for (ax, ay), (bx, by) in zip(stroke, stroke[1:]):
                steps = max(1, int(40 * max(abs(bx - ax), abs(by - ay)) / side))
                points += [[ax + (bx - ax) * k / steps + rng.uniform(-0.004, 0.004) * side,
                            ay + (by - ay) * k / steps + rng.uniform(-0.004, 0.004) * side] for k in range(1, steps + 1)]
            strokes.append(points)
        made.append({"canvas_side": side, "strokes": strokes})
    return made


def drawing_client(port: int, jobs: list[dict], latencies: list, errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for job in jobs:
            try:
                status, _, _, seconds = request(port, "POST", "/api/read/strokes", json.dumps(job).encode(),
                                                {"Content-Type": "application/json"}, conn)
                latencies.append(seconds)
                if status != 200:
                    errors.append(f"drawing: HTTP {status}")
            except Exception as exc:
                errors.append(f"drawing: {type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    finally:
        conn.close()


def photo_client(port: int, photo: bytes, go: threading.Event, results: list, errors: list) -> None:
    go.wait()
    try:
        status, _, body, seconds = post_photo(port, photo)
        results.append((status, seconds))
        if status != 200:
            errors.append(f"photo: HTTP {status} {body[:120]!r}")
    except Exception as exc:
        errors.append(f"photo: {type(exc).__name__}: {exc}")


def trickle(port: int, data: bytes, seconds: float, result: dict) -> None:
    """The whole body, in 64 kB pieces spread over `seconds`, as a slow phone upload."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    result["start"] = time.monotonic()
    try:
        conn.putrequest("POST", "/api/read/photo")
        conn.putheader("Content-Type", "image/jpeg")
        conn.putheader("Content-Length", str(len(data)))
        conn.endheaders()
        piece = 64 * 1024
        pieces = range(0, len(data), piece)
        for i, at in enumerate(pieces):
            conn.send(data[at:at + piece])
            time.sleep(max(0.0, result["start"] + seconds * (i + 1) / len(pieces) - time.monotonic()))
        result["sent"] = time.monotonic()
        response = conn.getresponse()
        result["status"], result["body"] = response.status, response.read()[:120]
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        result["end"] = time.monotonic()
        conn.close()


def card_poller(port: int, until: threading.Event, latencies: list, errors: list) -> None:
    while not until.is_set():
        try:
            asked = time.monotonic()
            status, _, _, seconds = request(port, "GET", "/api/model")
            latencies.append((asked, seconds))
            if status != 200:
                errors.append(f"card: HTTP {status}")
        except Exception as exc:
            errors.append(f"card: {type(exc).__name__}: {exc}")
        until.wait(CARD_EVERY)


def load_poller(port: int, until: threading.Event, seen: dict) -> None:
    while not until.is_set():
        try:
            counts = json.loads(request(port, "GET", "/api/load")[2])
            for key in ("arriving", "waiting", "working"):
                seen[key] = max(seen.get(key, 0), counts[key])
        except Exception:
            pass
        until.wait(0.05)


def under_load(server: Server, photo: bytes, big: bytes) -> dict:
    port, errors = server.port, []
    jobs = drawings(DRAWINGS)
    latencies: list[float] = []
    card_latencies: list[float] = []
    photos: list = []
    trickled: dict = {}
    seen: dict = {}
    done, go = threading.Event(), threading.Event()
    start = time.monotonic()
    side = [threading.Thread(target=trickle, args=(port, big, TRICKLE_SECONDS, trickled)),
            threading.Thread(target=card_poller, args=(port, done, card_latencies, errors)),
            threading.Thread(target=load_poller, args=(port, done, seen))]
    clients = [threading.Thread(target=drawing_client, args=(port, jobs[i::DRAWING_CLIENTS], latencies, errors))
               for i in range(DRAWING_CLIENTS)]
    uploads = [threading.Thread(target=photo_client, args=(port, photo, go, photos, errors)) for _ in range(PHOTO_UPLOADS)]
    for thread in side + clients + uploads:
        thread.start()
    time.sleep(1.0)                       # the drawings are under way: now the 24 photos at once
    go.set()
    for thread in clients + uploads + side[:1]:
        thread.join()
    end = time.monotonic()
    done.set()
    for thread in side[1:]:
        thread.join()
    if trickled.get("status") != 200:
        errors.append(f"9 MB trickle: {trickled.get('status')} {trickled.get('error') or trickled.get('body')}")
    during = [seconds for asked, seconds in card_latencies
              if trickled.get("start", start) <= asked <= trickled.get("sent", end)]
    ordered = sorted(latencies)
    return {
        "errors": errors, "drawings": len(latencies),
        "drawing_p50": statistics.median(ordered) if ordered else None,
        "drawing_p99": ordered[max(0, int(round(0.99 * len(ordered))) - 1)] if ordered else None,
        "drawing_max": ordered[-1] if ordered else None,
        "photos": len(photos), "photo_503": sum(1 for status, _ in photos if status == 503),
        "photo_p50": statistics.median(s for _, s in photos) if photos else None,
        "photo_max": max((s for _, s in photos), default=None),
        "card_max": max(during, default=None), "card_polls": len(during),
        "trickle_seconds": trickled.get("end", end) - trickled.get("start", start),
        "trickle_bytes": len(big), "wall_seconds": end - start,
        "server_peak": server.peak_between(start, time.monotonic()), "queue_seen": seen,
    }


def fill_the_queue(server: Server, photo: bytes) -> dict:
    """Slow uploads hold every place; the next photo gets 503 + Retry-After; the slow clients then
    disconnect mid-upload; the queue empties and the next photo is read."""
    port = server.port
    card = json.loads(request(port, "GET", "/api/model")[2])["limits"]
    places = card["photo_workers"] + card["photo_queue"]
    held = []
    for _ in range(places):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(b"POST /api/read/photo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                     + f"Content-Length: {len(photo)}\r\n\r\n".encode() + photo[:4096])
        held.append(sock)
    deadline = time.monotonic() + 30
    while json.loads(request(port, "GET", "/api/load")[2])["arriving"] < places and time.monotonic() < deadline:
        time.sleep(0.02)
    status, headers, body, seconds = post_photo(port, photo)
    refused = {"status": status, "retry_after": headers.get("retry-after"), "seconds": seconds,
               "one_line": one_line_detail(status, body), "detail": json.loads(body).get("detail") if status == 503 else None}
    before = server.rss()
    for sock in held:
        sock.close()                                          # gone mid-upload
    deadline = time.monotonic() + 10
    counts = {}
    while time.monotonic() < deadline:
        counts = json.loads(request(port, "GET", "/api/load")[2])
        if counts["arriving"] + counts["waiting"] + counts["working"] == 0:
            break
        time.sleep(0.02)
    after_status, _, _, after_seconds = post_photo(port, photo)
    return {"places": places, "refused": refused, "counts_after_disconnect": counts,
            "photo_after": after_status, "photo_after_seconds": after_seconds,
            "rss_with_held_mib": before / MIB, "rss_after_mib": server.rss() / MIB}


# --------------------------------------------------------------------------- 3. hostile files
def hostile(server: Server) -> dict:
    """Every named hostile case once, alone: its answer, and the server's peak memory above its RSS
    just before (what the allocator kept from earlier work is not counted again)."""
    cases = {**hostile_images.hostile_cases(), **hostile_images.small_bombs()}
    answers, failures = {}, []
    first = time.monotonic()
    for name, data in cases.items():
        time.sleep(0.05)
        before = server.rss()
        exact = server.reset_high_water()
        start = time.monotonic()
        try:
            status, _, body, seconds = post_photo(server.port, data)
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        time.sleep(0.05)
        peak = max((server.high_water() or 0) if exact else 0, server.peak_between(start, time.monotonic()))
        good = status == 200 or one_line_detail(status, body)
        detail = json.loads(body).get("detail") if status != 200 else "read"
        answers[name] = {"status": status, "seconds": seconds, "mib_above_before": (peak - before) / MIB,
                         "bytes": len(data), "answer": detail}
        if not good or status >= 500:
            failures.append(f"{name}: HTTP {status} {body[:120]!r}")
    return {"cases": answers, "failures": failures, "server_peak": server.peak_between(first, time.monotonic())}


def fuzz_seeds() -> list[tuple[str, bytes]]:
    """Small pictures of a 7 in every format and mode Pillow writes that a user might send."""
    from PIL import Image

    encoded = hostile_images.encoded
    rgb = hostile_images.seven_on_paper((48, 52))
    gray = rgb.convert("L")
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return [
        ("png rgb", encoded(rgb, "PNG")), ("png gray", encoded(gray, "PNG")),
        ("png rgba", encoded(rgb.convert("RGBA"), "PNG")), ("png palette", encoded(palette, "PNG", transparency=0)),
        ("png 16-bit", encoded(gray.convert("I;16"), "PNG")), ("png 1-bit", encoded(gray.convert("1"), "PNG")),
        ("jpeg", encoded(rgb, "JPEG", quality=85)), ("jpeg progressive", encoded(rgb, "JPEG", progressive=True)),
        ("jpeg gray", encoded(gray, "JPEG")), ("jpeg cmyk", encoded(rgb.convert("CMYK"), "JPEG")),
        ("jpeg exif turned", hostile_images.with_orientation(rgb, 6)),
        ("gif", encoded(palette, "GIF")), ("gif 3 frames", hostile_images.gif_frames(3, 16)),
        ("bmp", encoded(rgb, "BMP")), ("bmp palette", encoded(palette, "BMP")),
        ("webp lossy", encoded(rgb, "WEBP", quality=80)), ("webp lossless", encoded(rgb, "WEBP", lossless=True)),
        ("ppm", encoded(rgb, "PPM")), ("pgm", encoded(gray, "PPM")), ("tiff", encoded(rgb, "TIFF")),
    ]


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One random damage: cut, flipped bits, a garbled header, bytes inserted or repeated, sizes
    rewritten in the header (with a valid PNG checksum), or noise."""
    import struct
    import zlib

    data = bytearray(data)
    kind = rng.choice(["cut", "bits", "header", "insert", "repeat", "sizes", "sizes", "noise"])
    if kind == "cut":
        data = data[:rng.randrange(len(data))]
    elif kind == "bits":
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "header":
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(min(len(data), 64))] = rng.randrange(256)
    elif kind == "insert":
        at = rng.randrange(len(data))
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == "repeat":
        at = rng.randrange(len(data))
        data[at:at] = data[at:at + rng.randint(1, 2048)] * rng.randint(2, 50)
    elif kind == "sizes":
        width, height = (rng.choice([0, 1, 255, 6000, 6600, 40_000, 65_535, rng.randrange(1, 70_000)]) for _ in "wh")
        if data[:4] == b"\x89PNG":                              # IHDR sizes, checksum recomputed
            data[16:24] = struct.pack(">II", width, height)
            data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
        elif data[:2] == b"\xff\xd8" and (b"\xff\xc0" in data or b"\xff\xc2" in data):
            at = data.find(b"\xff\xc0") if b"\xff\xc0" in data else data.find(b"\xff\xc2")
            data[at + 5:at + 9] = struct.pack(">HH", min(height, 65_535), min(width, 65_535))
        elif data[:3] == b"GIF":
            data[6:10] = struct.pack("<HH", min(width, 65_535), min(height, 65_535))
        elif data[:2] == b"BM":
            data[18:26] = struct.pack("<ii", width, rng.choice([height, -height]))
        else:
            data = data[:8] + f"{width} {height}".encode() + data[8:]
    else:
        data = bytearray(rng.randbytes(rng.randint(0, 4096)))
    return kind, bytes(data)


def fuzz(server: Server, cases: int, seconds: float, clients: int) -> dict:
    seeds = fuzz_seeds()
    rng = random.Random(2026)
    work = [(name,) + mutate(data, rng) for name, data in (rng.choice(seeds) for _ in range(cases))]
    statuses: dict[str, int] = {}
    failures: list[str] = []
    done, bad = [0], [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(share):
        for name, kind, data in share:
            if time.monotonic() > deadline:
                return
            try:
                status, _, body, _ = post_photo(server.port, data)
                good = status == 200 or one_line_detail(status, body)
                outcome = str(status)
            except Exception as exc:
                good, outcome = False, type(exc).__name__
            with lock:
                done[0] += 1
                statuses[outcome] = statuses.get(outcome, 0) + 1
                if not good:
                    bad[0] += 1
                    if len(failures) < 20:
                        failures.append(f"{name}, {kind}: {outcome}")

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(work[i::clients],)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    end = time.monotonic()
    return {"cases": done[0], "planned": cases, "seconds": end - start, "statuses": statuses,
            "failures": failures, "failed": bad[0], "server_peak": server.peak_between(start, end)}


# ----------------------------------------------------------------------------------- the report
def pick_model(folder: Path) -> tuple[Path, str]:
    for path, what in ((REPO / "models/digits.mlmodel", "models/digits.mlmodel (make demo)"),
                       (REPO / "ios_app/DigitDemo/DigitClassifier.mlmodel", "the app's shipped model (ios_app)")):
        if path.is_file():
            return path, what
    import try_models

    return try_models.digit_model(folder), "a softmax regression written here (tests/try_models.py)"


def figure(rows: list, item: str, name: str, value, shown: str, target: str, ok: bool) -> None:
    rows.append({"item": item, "figure": name, "value": value, "measured": shown, "target": target, "pass": bool(ok)})
    print(f"  [{'pass' if ok else 'FAIL'}] {item}. {name}: {shown}  (target {target})", flush=True)


def figures(one: dict, load: dict, queue: dict, bad: dict, fuzzed: dict, peak: int, exit_code: int) -> list[dict]:
    rows: list[dict] = []
    t = TARGETS
    print("\nFigures (issue 26):")
    worst_time, worst_mib = max(one["seconds"]), max(one["mib_above_idle"])
    figure(rows, "1", "one 40 MP photo: time (worst of 3)", worst_time, f"{worst_time:.2f} s", f"≤ {t['photo_seconds']} s",
           worst_time <= t["photo_seconds"])
    figure(rows, "1", "one 40 MP photo: server memory above idle (worst of 3)", worst_mib, f"{worst_mib:.0f} MiB",
           f"≤ {t['photo_mib']} MiB", worst_mib <= t["photo_mib"])
    read = [answer for _, answer in one["answers"]]
    figure(rows, "1", "one 40 MP photo: read as", read, ", ".join(map(str, read)), "7", all(a == "7" for a in read))
    figure(rows, "2", "errors under load", len(load["errors"]), str(len(load["errors"])), "0", not load["errors"])
    figure(rows, "2", "drawings answered", load["drawings"], str(load["drawings"]), str(DRAWINGS),
           load["drawings"] == DRAWINGS)
    figure(rows, "2", "drawing p50 under load", load["drawing_p50"], f"{load['drawing_p50']:.2f} s",
           "(issue: 0.30 s without photos)", True)
    figure(rows, "2", "drawing p99 under load", load["drawing_p99"], f"{load['drawing_p99']:.2f} s",
           f"≤ {t['drawing_p99']} s", load["drawing_p99"] <= t["drawing_p99"])
    figure(rows, "2", "40 MP photos answered, of 24 at once", load["photos"],
           f"{load['photos']} (p50 {load['photo_p50']:.2f} s, slowest {load['photo_max']:.2f} s)", "24, no 503",
           load["photos"] == PHOTO_UPLOADS and load["photo_503"] == 0)
    card = load["card_max"]
    figure(rows, "2", f"model card during the 9 MB trickle (slowest of {load['card_polls']})", card,
           "none asked" if card is None else f"{card:.2f} s", f"≤ {t['card_seconds']} s",
           card is not None and card <= t["card_seconds"])
    figure(rows, "2", "server memory under load (peak RSS)", load["server_peak"], f"{load['server_peak'] / MIB:.0f} MiB",
           f"≤ {t['server_gib']} GiB", load["server_peak"] <= t["server_gib"] * 1024 * MIB)
    refused = queue["refused"]
    figure(rows, "2", f"beyond the queue ({queue['places']} places held by slow uploads)", refused["status"],
           f"HTTP {refused['status']}, Retry-After: {refused['retry_after']}, in {refused['seconds']:.2f} s",
           "503 with Retry-After", refused["status"] == 503 and refused["retry_after"] and refused["one_line"])
    counts = queue["counts_after_disconnect"]
    emptied = counts.get("arriving", 1) + counts.get("waiting", 1) + counts.get("working", 1) == 0
    figure(rows, "2", "after those clients disconnect mid-upload", counts,
           f"queue {'empty' if emptied else counts}, next photo HTTP {queue['photo_after']} "
           f"in {queue['photo_after_seconds']:.2f} s", "queue empty, next photo 200",
           emptied and queue["photo_after"] == 200)
    cases = bad["cases"]
    worst = max(cases.values(), key=lambda case: case["mib_above_before"])
    figure(rows, "3", "hostile files answered in one line (4xx) or read", len(cases) - len(bad["failures"]),
           f"{len(cases) - len(bad['failures'])} of {len(cases)} (most memory: {worst['mib_above_before']:.0f} MiB "
           "for one file)", f"all {len(cases)}", not bad["failures"])
    figure(rows, "3", "fuzzed uploads: a reading or a one-line 4xx", fuzzed["failed"],
           f"{fuzzed['cases']} cases in {fuzzed['seconds']:.0f} s, {fuzzed['failed']} failed "
           f"({', '.join(f'{k}: {v}' for k, v in sorted(fuzzed['statuses'].items()))})",
           "≥ 2000 cases, 0 failed", fuzzed["failed"] == 0 and fuzzed["cases"] >= 2000)
    hostile_peak = max(fuzzed["server_peak"], bad["server_peak"])
    figure(rows, "3", "server memory through hostile files and fuzz (peak RSS)", hostile_peak,
           f"{hostile_peak / MIB:.0f} MiB", f"≤ {t['server_gib']} GiB", hostile_peak <= t["server_gib"] * 1024 * MIB)
    figure(rows, "2-3", "server peak RSS over the whole run; stopped by Ctrl-C", peak,
           f"{peak / MIB:.0f} MiB; exit code {exit_code}", f"≤ {t['server_gib']} GiB; 0",
           peak <= t["server_gib"] * 1024 * MIB and exit_code == 0)
    return rows


def write_report(out: Path, rows: list[dict], details: dict, name: str = "load") -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"figures": rows, **details}, indent=1, default=str) + "\n")
    env = details["environment"]
    lines = ["# `make load`: kerasml try under load (issue 26)", "",
             f"Measured {env['date']} on {env['machine']} ({env['cores']} cores, {env['memory_gib']:.0f} GiB), "
             f"load average {env['load_before']} before and {env['load_after']} after (other work on the machine "
             f"included); {env['seconds']:.0f} s in all. Model: {env['model']}. Server: `python -m kerasml try MODEL "
             f"--port 0` on 127.0.0.1, {env['workers']} photo workers, queue {env['queue']}; its RSS "
             f"{env['cold_idle_mib']:.0f} MiB when started, {env['idle_mib']:.0f} MiB after a first drawing and a "
             f"small photo (the idle baseline of item 1: imports done once). Command: `{env['command']}`.", "",
             "| item | figure | measured | target | result |", "|---|---|---|---|---|"]
    lines += [f"| {r['item']} | {r['figure']} | {r['measured']} | {r['target']} | {'pass' if r['pass'] else '**FAIL**'} |"
              for r in rows]
    lines += ["", "Hostile files, each alone (memory: the server's peak above its RSS just before):", "",
              "| file | bytes | HTTP | answer | memory |",
              "|---|---|---|---|---|"]
    for file, case in details["hostile"]["cases"].items():
        answer = str(case["answer"]).replace("|", "/")
        lines.append(f"| {file} | {case['bytes']:,} | {case['status']} | {answer} | {max(0.0, case['mib_above_before']):.0f} MiB |")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench", help="where load.json and load.md go")
    parser.add_argument("--fuzz", type=int, default=FUZZ_CASES, help="fuzzed uploads (default %(default)s)")
    parser.add_argument("--fuzz-seconds", type=float, default=FUZZ_SECONDS, help="the fuzz stops after this long")
    parser.add_argument("--model", type=Path, help="the model to serve (a Core AI .aimodel too); default as above")
    parser.add_argument("--name", default="load", help="the report's file name: NAME.json and NAME.md")
    args = parser.parse_args()
    started, load_before = time.monotonic(), os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        model, model_what = (args.model, str(args.model)) if args.model else pick_model(Path(folder))
        print(f"model: {model_what}; making the photos ...", flush=True)
        photo = hostile_images.seven_jpeg()                          # 6000x6600, about 0.7 MB
        big = hostile_images.seven_jpeg(noise=4.5, quality=91)       # the same, noisy: about 9 MB
        small = hostile_images.encoded(hostile_images.seven_on_paper((300, 330)), "JPEG")
        server = Server(model)
        watchdog = threading.Timer(LIMIT_SECONDS, server.process.kill)     # a hung server fails every figure
        watchdog.daemon = True
        watchdog.start()
        try:
            time.sleep(1.0)
            cold = server.rss()
            request(server.port, "POST", "/api/read/strokes", json.dumps(drawings(1)[0]).encode(),
                    {"Content-Type": "application/json"})
            post_photo(server.port, small)                           # first use: lazy imports (PIL, SciPy)
            time.sleep(0.5)
            idle = server.rss()
            card = json.loads(request(server.port, "GET", "/api/model")[2])["limits"]
            print(f"server on port {server.port}: idle {cold / MIB:.0f} MiB, {idle / MIB:.0f} MiB after a first "
                  f"drawing and photo; photo {len(photo) / 1e6:.2f} MB, trickle {len(big) / 1e6:.1f} MB", flush=True)
            print("1. one 40 MP photo ...", flush=True)
            one = one_photo(server, photo, idle)
            print("2. 600 drawings + 24 photos + a 9 MB trickle ...", flush=True)
            load = under_load(server, photo, big)
            queue = fill_the_queue(server, photo)
            print("3. hostile files and fuzz ...", flush=True)
            bad = hostile(server)
            fuzzed = fuzz(server, args.fuzz, args.fuzz_seconds, FUZZ_CLIENTS)
        finally:
            watchdog.cancel()
            exit_code = server.stop()
    peak = max(rss for _, rss in server.samples)
    rows = figures(one, load, queue, bad, fuzzed, peak, exit_code)
    environment = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                   "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
                   "cores": os.cpu_count(), "memory_gib": PAGE * os.sysconf("SC_PHYS_PAGES") / 2 ** 30,
                   "load_before": " ".join(f"{x:.2f}" for x in load_before),
                   "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                   "seconds": time.monotonic() - started, "model": model_what,
                   "workers": card["photo_workers"], "queue": card["photo_queue"],
                   "idle_mib": idle / MIB, "cold_idle_mib": cold / MIB, "photo_bytes": len(photo),
                   "trickle_bytes": len(big),
                   "command": "make load" + (f" ARGS='{' '.join(sys.argv[1:])}'" if sys.argv[1:] else "")}
    write_report(args.out, rows, {"environment": environment, "one_photo": one,
                                  "load": load, "queue": queue, "hostile": bad,
                                  "fuzz": fuzzed}, args.name)
    failed = [row for row in rows if not row["pass"]]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} figures meet their targets; wrote {args.out / args.name}.md "
          f"and .json ({environment['seconds']:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
