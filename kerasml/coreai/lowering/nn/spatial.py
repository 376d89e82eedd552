"""Helpers for the layers that work on images (…, C, H, W): the blob as a Core AI (M, C, H, W)
value for conv2d and the pools (every leading axis merged into the batch, as the runtime's
`_as_images` does), padding of the last two axes, and the way back.

General enough for graph.py: `images` is `graph.spatial` for any leading shape.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from kerasml.coreai.lowering.graph import Graph, Tensor, i32, u32

BIG = np.iinfo(np.int32).max


def images(g: Graph, x: Tensor) -> tuple[object, Callable[[object, tuple], Tensor]]:
    """(value (M, C, H, W), back) for x of shape (..., C, H, W); `back(value, (C', H', W'))` gives the
    Tensor (..., C', H', W') of a result computed image by image."""
    if x.rank < 3:
        raise ValueError(f"needs an input of rank 3 or more (C, H, W), got shape {x.shape}")
    lead = x.shape[:-3]
    count = int(np.prod(lead)) if lead else 1
    value, batch = g.spatial(g.reshape(x, (count, *x.shape[-3:])), 2)

    def back(result, chw) -> Tensor:
        t = g.from_spatial(result, (count, *chw), x.dtype, batch)
        return g.reshape(t, (*lead, *chw))

    return value, back


def pad2d(g: Graph, value, pads, fill: float = 0.0, mode: str = "constant"):
    """value (M, C, H, W) padded by (top, bottom, left, right)."""
    top, bottom, left, right = (int(p) for p in pads)
    if not (top or bottom or left or right):
        return value
    return g.A.pad(value, u32([0, 0, 0, 0, top, bottom, left, right]), np.asarray(fill, np.float32), mode)


def crop2d(g: Graph, value, begin: tuple[int, int], size: tuple[int, int]):
    """value (M, C, H, W)[..., r:r + h, c:c + w]."""
    (r, col), (h, w) = begin, size
    return g.A.slice_(value, i32([0, 0, r, col]), i32([BIG, BIG, r + h, col + w]), i32([1, 1, 1, 1]))


def add_channel_bias(g: Graph, value, bias):
    if bias is None:
        return value
    return g.A.broadcasting_add(value, np.asarray(bias, np.float32).reshape(1, -1, 1, 1))
