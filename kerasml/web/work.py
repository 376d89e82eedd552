"""The page's heavy work, reading photos, in a bounded pool of threads behind a bounded queue.

A photo request holds a place from its first byte until it is answered: while its body arrives,
while it waits for a worker, and while a worker decodes, prepares and reads it. At most `workers`
photos are worked on at once (one per core, at most 4: WORKERS) and `queue` more may be arriving or waiting
(QUEUE); the next one is answered 503 with a Retry-After header at once, before its body is read.
So a burst of uploads costs a bounded amount of memory: each place holds at most one body of
MAX_UPLOAD_BYTES, and each worker one photo being prepared. Drawings and the model card never wait
here. A client that disconnects while its photo arrives or waits frees its place at once and its
photo is never decoded; one that leaves while a worker has it is answered to nobody, and its place
frees when the worker does.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, TypeVar

import anyio
from starlette.requests import ClientDisconnect, Request

T = TypeVar("T")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))     # the cores this process may use (containers, taskset)
    except AttributeError:                       # macOS
        return os.cpu_count() or 1


WORKERS = max(1, min(_cores(), 4))  # photos worked on at once: one per core, at most 4 (~0.3 GB each at worst)
QUEUE = 32                          # more photo requests that may be arriving or waiting for a worker
RETRY_AFTER_S = 2                   # what a refused client is told to wait (most photos take well under 1 s)


class Busy(Exception):
    """Every place is taken: the photo is refused with HTTP 503 and Retry-After."""


class PhotoWork:
    """The pool and the queue of one app; `counts()` says how full they are."""

    def __init__(self, workers: int = WORKERS, queue: int = QUEUE, retry_after: int = RETRY_AFTER_S):
        if workers < 1 or queue < 0:
            raise ValueError(f"need at least one worker and a queue of 0 or more, not {workers} and {queue}")
        self.workers, self.queue, self.retry_after = workers, queue, retry_after
        self._limiter = anyio.CapacityLimiter(workers)      # wakes waiters first come, first served
        self._lock = threading.Lock()                        # workers leave from their own threads
        self._counts = {"arriving": 0, "waiting": 0, "working": 0}

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    async def run(self, request: Request, job: Callable[[bytes], T]) -> T | None:
        """`job(body)` in a worker thread once a worker is free; None when the client went away
        before a worker took it (then nothing was done). Raises Busy when every place is taken."""
        self._admit()
        try:
            body = await request.body()
        except ClientDisconnect:
            self._move("arriving", None)
            return None
        except BaseException:                   # too large, or the server stopping: the place is free
            self._move("arriving", None)
            raise
        self._move("arriving", "waiting")
        held = [job, body]                      # cleared once taken, so a cancelled body is freed
        del body
        outcome: dict = {}
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_on_disconnect, request, group.cancel_scope)
                try:
                    # Waiting for the limiter can be cancelled (the client left); once a worker has
                    # the photo, run_sync is shielded and returns when the job ends.
                    outcome["result"] = await anyio.to_thread.run_sync(self._work, held, limiter=self._limiter)
                except Exception as exc:        # the job's own error (a damaged image): raised below
                    outcome["error"] = exc
                group.cancel_scope.cancel()
        finally:
            if held:                            # never started: the client left, or the server stopped
                held.clear()
                self._move("waiting", None)
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("result")

    def _work(self, held: list):
        self._move("waiting", "working")
        job, body = held
        held.clear()
        try:
            return job(body)
        finally:
            self._move("working", None)

    def _admit(self) -> None:
        with self._lock:
            taken = sum(self._counts.values())
            if taken >= self.workers + self.queue:
                raise Busy(f"the server is busy with {taken} photos ({self.workers} at a time, "
                           f"{self.queue} more waiting); try again in {self.retry_after} s")
            self._counts["arriving"] += 1

    def _move(self, old: str, new: str | None) -> None:
        with self._lock:
            self._counts[old] -= 1
            if new is not None:
                self._counts[new] += 1


async def _cancel_on_disconnect(request: Request, scope: anyio.CancelScope) -> None:
    """After the body, the server's next message is the client's disconnect (if it comes first)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    scope.cancel()
