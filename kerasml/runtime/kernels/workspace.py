"""`Workspace`: the output buffers a layer or op keeps between batches, one set per thread."""

from __future__ import annotations

import threading

import numpy as np


class Workspace:
    """Output buffers a layer keeps between batches.

    Fresh arrays of tens of megabytes come from `mmap` and cost a page fault per 4 KiB on first
    write, as much as the arithmetic itself; reusing them makes batch after batch fault-free. A
    buffer is only valid until the layer runs again, so engines copy what they return.
    """

    def __init__(self) -> None:
        self._local = threading.local()  # one set of buffers per thread: engines run batches in parallel

    @property
    def _buffers(self) -> dict[str, np.ndarray]:
        buffers = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = self._local.buffers = {}
        return buffers

    def empty(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        buffers = self._buffers
        buf = buffers.get(key)
        if buf is None or buf.shape != tuple(shape):
            buf = buffers[key] = np.empty(shape, dtype=np.float32)
        return buf

    def like(self, key: str, x: np.ndarray) -> np.ndarray:
        """A float32 buffer with `x`'s shape and memory layout (so elementwise writes stream)."""
        buffers = self._buffers
        buf = buffers.get(key)
        if buf is None or buf.shape != x.shape or buf.strides != x.strides or x.dtype != np.float32:
            buf = buffers[key] = np.empty_like(x, dtype=np.float32)
        return buf


def buffer(ws: Workspace | None, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float32 buffer of `shape`: the workspace's own, or a fresh one without a workspace."""
    return ws.empty(key, shape) if ws is not None else np.empty(shape, dtype=np.float32)
