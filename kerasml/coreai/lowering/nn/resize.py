"""NeuralNetwork layers that resample or cut the last two axes: `upsample` (nearest by whole
factors; bilinear on each of its grids, fractional factors included), `resizeBilinear` and `crop`.

Nearest upsampling repeats each pixel: a reshape to (..., H, 1, W, 1), a tile, a reshape. Bilinear
resizing of an axis is linear in it, output = M @ input with an (out, in) matrix; resizing the
identity with the runtime's own kernel (`kernels.resize_bilinear`) gives M, so Core AI needs two
matrix products and no second implementation of any sampling grid.
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import STACKED, Tensor, u32
from kerasml.coreai.lowering.nn.arith import F32
from kerasml.coreai.lowering.nn.layer import Layer
from kerasml.coreai.lowering.nn.linear import times_matrix
from kerasml.coreai.lowering.nn.shape_ops import picked
from kerasml.coreai.lowering.registry import NN_LOWERINGS, lowers
from kerasml.runtime import kernels
from kerasml.runtime.nn.common import border, pair
from kerasml.runtime.nn.resize import SAMPLING_GRIDS, UPSAMPLE_GRIDS


def axis_matrix(n_in: int, n_out: int, grid: str) -> np.ndarray:
    """M (n_out, n_in): the runtime's bilinear resizing of one axis, resize(x)[o] = sum_i M[o, i] x[i]."""
    basis = np.eye(n_in, dtype=np.float32).reshape(n_in, 1, n_in, 1)
    rows = kernels.resize_bilinear(basis, (n_out, 1), grid)
    return np.ascontiguousarray(rows.reshape(n_in, n_out).T)


def resized(g, x: Tensor, out: tuple[int, int], grid: str) -> Tensor:
    """x (..., H, W) resized bilinearly to `out` on a `kernels.sample_grid` grid."""
    (h, w), (oh, ow) = x.shape[-2:], out
    rows, cols = axis_matrix(h, oh, grid), axis_matrix(w, ow, grid)
    y = x
    if oh != h or not np.array_equal(rows, np.eye(h)):
        t = g.stacked(y)
        m = rows.reshape((1,) * (t.rank - 1) + rows.shape)
        y = Tensor(g.A.broadcasting_batch_matmul(m, t.value), (*t.shape[:-2], oh, w), F32, STACKED)
    if ow != w or not np.array_equal(cols, np.eye(w)):
        y = times_matrix(g, y, np.ascontiguousarray(cols.T))
    return y


def _needs_rank3(x: Tensor) -> None:
    if x.rank < 3:
        raise ValueError(f"needs an input of rank 3 or more (C, H, W), got shape {x.shape}")


@lowers(NN_LOWERINGS, "upsample", params="scalingFactor fractionalScalingFactor mode linearUpsampleMode")
def upsample(layer: Layer) -> list:
    g, p, x = layer.g, layer.p, layer.x()
    _needs_rank3(x)
    out = tuple(layer.shape[-2:])
    if p.mode == 0:
        fh, fw = pair(p.scalingFactor, 1)
        (h, w), lead = x.shape[-2:], x.shape[:-2]
        y = g.reshape(x, (*lead, h, 1, w, 1))
        reps = [1] * (len(lead) + 4)
        reps[-3], reps[-1] = fh, fw
        core = [1, *reps] if y.layout == STACKED else [1, *reps[1:]]
        y = Tensor(g.A.tile(y.value, u32(core)), (*lead, h, fh, w, fw), F32, y.layout)
        return [layer.out(y)]
    grid = UPSAMPLE_GRIDS.get(p.linearUpsampleMode)
    if p.mode != 1 or grid is None:
        raise layer.unsupported(f"upsample mode {p.mode} with linear mode {p.linearUpsampleMode}")
    return [resized(g, x, out, grid)]


@lowers(NN_LOWERINGS, "resizeBilinear", params="targetSize mode")
def resize_bilinear(layer: Layer) -> list:
    x = layer.x()
    _needs_rank3(x)
    grid = SAMPLING_GRIDS.get(layer.p.mode.samplingMethod)
    if grid is None:
        raise layer.unsupported(f"sampling method {layer.p.mode.samplingMethod}")
    return [resized(layer.g, x, tuple(layer.shape[-2:]), grid)]


@lowers(NN_LOWERINGS, "crop", params="cropAmounts offset")
def crop(layer: Layer) -> list:
    g, p, x = layer.g, layer.p, layer.x()
    _needs_rank3(x)
    (h, w), (oh, ow) = x.shape[-2:], layer.shape[-2:]
    if len(layer.inputs) == 2:      # to the reference's size, from `offset`
        top, left = pair(p.offset, 0)
    else:
        top, _, left, _ = border(p.cropAmounts, layer.name)
    picks = [np.arange(d) for d in x.shape]
    picks[-2], picks[-1] = np.arange(top, top + oh), np.arange(left, left + ow)
    return [picked(g, x, picks)]
