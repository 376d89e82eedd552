"""Running batches on all cores: one Python thread per core, BLAS itself single-threaded.

NumPy releases the GIL inside its loops and matmuls, so threads that each take whole batches keep
every core busy for every layer, not only in the matmuls that a multi-threaded BLAS parallelises;
and they avoid BLAS threads spin-waiting for each other on a busy machine. BLAS threads are limited
with `threadpoolctl` when it is installed; without it, batches run one after another as before.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


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


def parallel_map(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`[fn(item) for item in items]`, spread over the cores when that is safe and worth it."""
    workers = min(_cores(), len(items))
    limits = _single_threaded_blas() if workers > 1 else None
    if limits is None:
        return [fn(item) for item in items]
    with limits, ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))
