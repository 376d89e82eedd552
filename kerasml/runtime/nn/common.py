"""What every NeuralNetwork layer module shares: the compiled-layer type `Run`, the refusal message,
and the few geometry helpers several layer families read the spec with.

A compile function (registered in `registry.NN_LAYERS`) reads and checks a layer's parameters once, at
load time, and returns `run(inputs) -> outputs`. Blobs are float32 arrays with a leading axis of
independent predictions, then the per-prediction Core ML shape.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from kerasml.runtime.errors import UnsupportedModelError

Run = Callable[[list], list]


def unsupported(name: str, kind: str, what: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"layer '{name}' ({kind}) uses {what}, which the kerasml runtime does not implement; "
        "convert the model without it or check it on macOS with coremltools"
    )


def border(amounts, name: str) -> tuple[int, int, int, int]:
    """ValidPadding/PaddingLayer `borderAmounts` [height, width] as (top, bottom, left, right)."""
    edges = list(amounts.borderAmounts)
    if not edges:
        return (0, 0, 0, 0)
    if len(edges) != 2:
        raise ValueError(f"layer '{name}': {len(edges)} border amounts, expected 2 (height, width)")
    return (edges[0].startEdgeSize, edges[0].endEdgeSize, edges[1].startEdgeSize, edges[1].endEdgeSize)


def pair(values, default: int) -> tuple[int, int]:
    values = list(values)
    return (values[0], values[1]) if values else (default, default)


def align_ranks(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Give every operand the same per-prediction rank (new axes go after the batch axis), so
    operands of different ranks broadcast per prediction, never across predictions: a (N, 16)
    blob plus a (N, 1, 16) one is (N, 1, 16), not (N, N, 16)."""
    rank = max(a.ndim for a in arrays)
    return [a.reshape(a.shape[:1] + (1,) * (rank - a.ndim) + a.shape[1:]) for a in arrays]


def batch_axis(axis: int, x: np.ndarray) -> int:
    """A per-prediction axis (negative counts from the end) as an axis of the batched array."""
    rank = x.ndim - 1
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis + rank + 1 if axis < 0 else axis + 1


def align_batches(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Give every operand the same per-prediction rank (new axes go after the batch axis)."""
    rank = max(a.ndim for a in arrays)
    arrays = [a.reshape(a.shape[:1] + (1,) * (rank - a.ndim) + a.shape[1:]) for a in arrays]
    n = max(a.shape[0] for a in arrays)  # constants carry a batch of one: repeat them for every prediction
    return [np.broadcast_to(a, (n,) + a.shape[1:]) if a.shape[0] == 1 and n > 1 else a for a in arrays]
