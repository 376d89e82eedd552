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
from kerasml.runtime.mil.resize import SAMPLING_MODES


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
    if mode not in SAMPLING_MODES:
        raise op.unsupported(f"sampling_mode '{mode}'")
    return _resized(op, lambda x, size: kernels.resize_bilinear(x, size, SAMPLING_MODES[mode]))


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
    if mode != "LINEAR" or sampling not in SAMPLING_MODES:
        raise op.unsupported(f"interpolation_mode '{mode}' with sampling_mode '{sampling}'")
    return _resized(op, lambda x, size: kernels.resize_bilinear(x, size, SAMPLING_MODES[sampling]))


@lowers(MIL_LOWERINGS, "crop", params="x crop_height crop_width")
def crop(op: Op) -> list:
    x = op.batched("x")
    (top, bottom), (left, right) = op.ints("crop_height"), op.ints("crop_width")
    begin = [0] * (x.rank - 2) + [top, left]
    end = list(x.shape[:-2]) + [x.shape[-2] - bottom, x.shape[-1] - right]
    return [op.g.slice(x, begin, end, [1] * x.rank)]


@lowers(MIL_LOWERINGS, "crop_resize", params="x roi boxes box_indices target_height target_width "
        "normalized_coordinates spatial_scale box_coordinate_mode sampling_mode pad_value")
def crop_resize(op: Op) -> list:
    """Constant boxes: each crop is bilinear sampling on a grid, rows and columns apart, so two matrix
    products with the image (the runtime's own grid and weights, as in `axis_matrix`), then the
    padding value wherever the grid leaves the image."""
    from kerasml.runtime.mil import resize as runtime_resize
    from kerasml.runtime.mil.args import Args

    g, x = op.g, op.batched("x")
    if x.rank != 4:
        raise op.unsupported(f"a rank-{x.rank} input")
    b, c, h, w = x.shape
    th, tw = int(op.scalar("target_height", 1)), int(op.scalar("target_width", 1))
    params = {p: [op.const(p)] for p in op.params() if p not in ("x",)}
    args = Args(op.name, op.kind, params, {p: [False] for p in params}, op.dtypes)
    mode, pad = runtime_resize._mode(args), float(op.scalar("pad_value", 0.0))
    if mode not in ("align_corners", "align_endpoints", "asymmetric", "roi_align"):
        raise op.unsupported(f"crop_resize with sampling_mode '{op.scalar('sampling_mode')}'")
    if op.has("boxes"):          # iOS 17: (N, 4) boxes on images box_indices → (N, C, th, tw)
        boxes = np.asarray(op.const("boxes"), np.float32).reshape(-1, 4)
        indices = op.ints("box_indices", None) or list(range(len(boxes)))
        crops = [([int(i)], box) for i, box in zip(indices, boxes)]
        piece = (1, c, th, tw)
    else:
        roi = np.asarray(op.const("roi"), np.float32)
        roi = roi.reshape(len(roi), -1)
        if roi.shape[1] == 5:     # (N, 1, 5, 1, 1): a batch index per box → (N, 1, C, th, tw)
            if tuple(op.shape[:2]) != (len(roi), 1):
                raise op.unsupported(f"boxes with batch indices on {b} images (declared {op.shape}, where "
                                     "kerasml's runtime computes one image per box)")
            crops = [([int(r[0])], r[1:]) for r in roi]
            piece = (1, 1, c, th, tw)
        else:                     # every box on every image → (N, B, C, th, tw)
            crops = [(list(range(b)), r) for r in roi]
            piece = (1, b, c, th, tw)
    parts = []
    for images, coords in crops:
        h0, h1, w0, w1 = runtime_resize._box(args, coords, h, w)
        rows, cols = kernels.box_grid(h0, h1, th, mode), kernels.box_grid(w0, w1, tw, mode)
        if images[0] < 0 or images[-1] >= b:
            raise ValueError(f"box index {images[0]} is out of range for {b} images")
        image = g.slice(x, [images[0], 0, 0, 0], [images[-1] + 1, c, h, w], [1, 1, 1, 1])
        m_rows = _sampling_matrix(rows, h).astype(x.dtype)
        m_cols = _sampling_matrix(cols, w).astype(x.dtype)
        y = _product(g, m_rows, image, image.shape[:2] + (th, w))
        y = _product(g, y, np.ascontiguousarray(m_cols.T), image.shape[:2] + (th, tw))
        outside = ((rows < 0) | (rows > h - 1))[:, None] | ((cols < 0) | (cols > w - 1))[None, :]
        if outside.any():
            y = g.elementwise(g.A.broadcasting_where, [outside, np.asarray(pad, x.dtype), y], y.shape, x.dtype)
        parts.append(g.reshape(y, piece))
    return [parts[0] if len(parts) == 1 else g.concat(parts, 0, op.shape, op.dtype)]


def _sampling_matrix(positions: np.ndarray, n: int) -> np.ndarray:
    """M (len(positions), n): bilinear sampling at `positions` (clipped to the axis, as the runtime
    reads them) is M @ values."""
    basis = np.eye(n, dtype=np.float32).reshape(n, n, 1)
    sampled = kernels.bilinear_sample(basis, np.clip(positions, 0, n - 1), np.zeros(1))
    return np.ascontiguousarray(sampled[:, :, 0].T)
