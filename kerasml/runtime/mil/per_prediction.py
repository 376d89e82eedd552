"""`per_prediction`: write an ML Program op on one prediction's arrays, run it on a batch.

Most ops are simplest to state on the shapes the program declares. An op decorated with
`@per_prediction` sees every input without the engine's leading batch axis (constants as they are,
batched values one prediction at a time) and its results are stacked back into a batch. Ops on the
hot path of a classifier (conv, pooling, dense, elementwise) handle the batch axis themselves.
"""

from __future__ import annotations

import functools

import numpy as np

from kerasml.runtime.mil.args import Args


def per_prediction(fn):
    @functools.wraps(fn)
    def run(args: Args) -> list:
        n = args.batch_size()
        if n is None:
            return fn(args)
        per_item = [fn(args.prediction(i)) for i in range(n)]
        return [np.stack([np.asarray(r[k]) for r in per_item]) for k in range(len(per_item[0]))]

    return run


def channel_param(values, x: np.ndarray, name: str) -> np.ndarray:
    """A per-channel (axis 1) parameter shaped to broadcast against x (rank >= 2)."""
    values = np.asarray(values, np.float32).ravel()
    if values.size not in (1, x.shape[1]):
        raise ValueError(f"{name} has {values.size} values for {x.shape[1]} channels")
    return values.reshape((1, -1) + (1,) * (x.ndim - 2))
