"""What every NeuralNetwork layer module shares: the compiled-layer type `Run`, the refusal message,
and the few geometry helpers several layer families read the spec with (borders, batch axes, images
as (M, C, H, W), volumes as (M, C, D, H, W) with their padding and windows).

A compile function (registered in `registry.NN_LAYERS`) reads and checks a layer's parameters once, at
load time, and returns `run(inputs) -> outputs`. Blobs are float32 arrays with a leading axis of
independent predictions, then the per-prediction Core ML shape.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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


def as_images(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """(N, ..., C, H, W) as (M, C, H, W), plus the leading shape to restore."""
    if x.ndim < 4:
        raise ValueError(f"expected a (C, H, W) input per prediction, got shape {x.shape[1:]}")
    return x.reshape((-1,) + x.shape[-3:]), x.shape[:-3]


def channel_axis(x: np.ndarray) -> int:
    """The 'C' axis: third from last for (..., C, 1, 1) blobs, otherwise the last (rank-N vectors)."""
    return x.ndim - 3 if x.ndim >= 4 else x.ndim - 1


def as_volumes(x: np.ndarray, kind: str) -> tuple[np.ndarray, tuple[int, ...]]:
    if x.ndim < 5:
        raise ValueError(f"{kind} needs [Batch, C, D, H, W] inputs, got shape {x.shape[1:]}")
    return x.reshape((-1,) + x.shape[-4:]), x.shape[:-4]


def volume_pads(p, spatial, kernel, stride, dilation=(1, 1, 1)) -> list[tuple[int, int]]:
    """(before, after) padding of D, H, W for a CUSTOM (0), VALID (1) or SAME (2) padding type."""
    if p.paddingType == 0:
        return [(p.customPaddingFront, p.customPaddingBack), (p.customPaddingTop, p.customPaddingBottom),
                (p.customPaddingLeft, p.customPaddingRight)]
    if p.paddingType == 1:
        return [(0, 0)] * 3
    pads = []
    for size, k, s, d in zip(spatial, kernel, stride, dilation):
        total = max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def volume_windows(x: np.ndarray, kernel, stride, dilation) -> np.ndarray:
    """(M, C, oD, oH, oW, kD, kH, kW) windows of an already padded (M, C, D, H, W) volume."""
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(e > n for e, n in zip(span, x.shape[2:])):
        raise ValueError(f"a {kernel} window does not fit a {x.shape[2:]} volume")
    win = sliding_window_view(x, span, axis=(2, 3, 4))
    return win[:, :, :: stride[0], :: stride[1], :: stride[2], :: dilation[0], :: dilation[1], :: dilation[2]]
