"""Running batches on all cores: one Python thread per core, BLAS itself single-threaded.

NumPy releases the GIL inside its loops and matmuls, so threads that each take part of the batch
keep every core busy for every layer, not only in the matmuls that a multi-threaded BLAS
parallelises. BLAS stays on one thread even when one worker runs alone: the layers' matmuls are
small (a 1x1 convolution of a few thousand pixels), and OpenBLAS threads spin-waiting for each
other on a busy machine made such a matmul 20 to 40 times slower (0.7 ms on one thread, 19 ms on
two, measured on the 2-core machine under load). BLAS threads are limited with `threadpoolctl` when
it is installed; without it, batches run one after another with BLAS as it is.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Below this many predictions per piece, splitting a batch over the cores costs more in per-layer
# overhead (NumPy calls, thread hand-over) than the second core gives back.
MIN_PIECE = 8


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _single_threaded_blas():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=1, user_api="blas")


def pieces(total: int, step: int) -> list[slice]:
    """Slices of at most `step` predictions covering `total`, and at least one per core when the
    batch is large enough, so a batch smaller than `step` still uses every core."""
    if total <= 0:
        return []
    count = max(-(-total // max(1, step)), min(_cores(), total // MIN_PIECE))
    size = -(-total // count)
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    """One pool for the process: its threads live on, and with them the layers' per-thread buffers
    (kernels.Workspace), which a fresh pool per call would allocate and page-fault again."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_cores(), thread_name_prefix="kerasml-runtime")
        return _pool


def parallel_map(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`[fn(item) for item in items]`, spread over the cores when that is safe and worth it."""
    workers = min(_cores(), len(items))
    limits = _single_threaded_blas()
    if limits is None:
        return [fn(item) for item in items]
    with limits:
        if workers <= 1:
            return [fn(item) for item in items]
        return list(_shared_pool().map(fn, items))
