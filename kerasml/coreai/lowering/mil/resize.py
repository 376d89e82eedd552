"""ML Program image resizing (upsample_*, resize_*, iOS 17's resize, crop).

Resizing an axis is linear in its input: output = M @ input with an (out, in) matrix. kerasml's
runtime computes each mode's sampling (nearest, bilinear on every MIL sampling grid); resizing the
identity with that same code gives M exactly, so Core AI needs only two matrix products per
resize and no second implementation of any grid can drift from the first.
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import STACKED, Tensor
from kerasml.coreai.lowering.mil.op import Op
from kerasml.coreai.lowering.registry import MIL_LOWERINGS, lowers
from kerasml.runtime import kernels
from kerasml.runtime.mil.resize import _MODES


def axis_matrix(n_in: int, n_out: int, resize) -> np.ndarray:
    """M (n_out, n_in) with resize(x)[..., o] = sum_i M[o, i] x[..., i] along one axis; `resize`
    takes (..., H, W) arrays and output (H, W) sizes, as the runtime's kernels do."""
    basis = np.eye(n_in, dtype=np.float32).reshape(n_in, 1, n_in, 1)
    rows = resize(basis, (n_out, 1))
    return np.ascontiguousarray(rows.reshape(n_in, n_out).T)


def _resized(op: Op, resize) -> list:
    """x (..., H, W) resized to the declared (H', W') by `resize(x, (h, w))`, a runtime kernel."""
    g, x = op.g, op.batched("x")
    (h, w), (oh, ow) = x.shape[-2:], op.shape[-2:]
    rows = axis_matrix(h, oh, resize).astype(x.dtype)
    cols = axis_matrix(w, ow, lambda b, size: np.swapaxes(resize(np.swapaxes(b, -1, -2), size[::-1]), -1, -2))
    y = x
    if oh != h or not np.array_equal(rows, np.eye(h)):
        y = _product(g, rows, y, y.shape[:-2] + (oh, w))
    if ow != w or not np.array_equal(cols, np.eye(w)):
        y = _product(g, y, np.ascontiguousarray(cols.T.astype(x.dtype)), op.shape)
    return [y]


def _product(g, a, b, shape) -> Tensor:
    """a @ b where one of them is a constant matrix, broadcast over the batched one's leading axes."""
    t = b if isinstance(b, Tensor) else a
    t = g.stacked(t)
    rank = len(shape) + 1
    values = [t.value if isinstance(v, Tensor) else np.asarray(v).reshape((1,) * (rank - 2) + np.shape(v))
              for v in ((t, b) if isinstance(a, Tensor) else (a, t))]
    return Tensor(g.A.broadcasting_batch_matmul(*values), tuple(shape), t.dtype, STACKED)


@lowers(MIL_LOWERINGS, "upsample_nearest_neighbor", params="x scale_factor_height scale_factor_width")
@lowers(MIL_LOWERINGS, "resize_nearest_neighbor", params="x target_size_height target_size_width")
def nearest(op: Op) -> list:
    return _resized(op, lambda x, size: kernels.resize_nearest(x, size))


@lowers(MIL_LOWERINGS, "upsample_bilinear", params="x scale_factor_height scale_factor_width align_corners half_pixel_centers")
def upsample_bilinear(op: Op) -> list:
    align = bool(op.scalar("align_corners", True))
    half = op.scalar("half_pixel_centers", None)
    half = (not align) if half is None else bool(half)
    if align and half:
        raise op.unsupported("align_corners together with half_pixel_centers")
    mode = "align_corners" if align else ("half_pixel" if half else "asymmetric")
    return _resized(op, lambda x, size: kernels.resize_bilinear(x, size, mode))


@lowers(MIL_LOWERINGS, "resize_bilinear", params="x target_size_height target_size_width sampling_mode")
def resize_bilinear(op: Op) -> list:
    mode = str(op.scalar("sampling_mode", "DEFAULT"))
    if mode not in _MODES:
        raise op.unsupported(f"sampling_mode '{mode}'")
    return _resized(op, lambda x, size: kernels.resize_bilinear(x, size, _MODES[mode]))


@lowers(MIL_LOWERINGS, "resize", params="x shape resized_dims interpolation_mode sampling_mode")
def resize(op: Op) -> list:
    """iOS 17: the last `resized_dims` axes (at most two) to the declared sizes."""
    if int(op.scalar("resized_dims")) > 2:
        raise op.unsupported("resizing more than two axes")
    mode = str(op.scalar("interpolation_mode", "LINEAR"))
    sampling = str(op.scalar("sampling_mode", "DEFAULT"))
    if mode == "NEAREST_NEIGHBOR":
        if sampling != "DEFAULT":
            raise op.unsupported(f"nearest-neighbour resizing with sampling_mode '{sampling}'")
        return _resized(op, lambda x, size: kernels.resize_nearest(x, size, half_pixel=True))
    if mode != "LINEAR" or sampling not in _MODES:
        raise op.unsupported(f"interpolation_mode '{mode}' with sampling_mode '{sampling}'")
    return _resized(op, lambda x, size: kernels.resize_bilinear(x, size, _MODES[sampling]))


@lowers(MIL_LOWERINGS, "crop", params="x crop_height crop_width")
def crop(op: Op) -> list:
    x = op.batched("x")
    (top, bottom), (left, right) = op.ints("crop_height"), op.ints("crop_width")
    begin = [0] * (x.rank - 2) + [top, left]
    end = list(x.shape[:-2]) + [x.shape[-2] - bottom, x.shape[-1] - right]
    return [op.g.slice(x, begin, end, [1] * x.rank)]
