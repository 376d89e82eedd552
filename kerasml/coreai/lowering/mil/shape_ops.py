"""ML Program tensor transformations: reshape and its kin, transpose, slicing, joining and
splitting, padding, tiling, reversing and gathering.

Reshapes (reshape, squeeze, expand_dims, flatten2d, reshape_like) all take the shape the program
declares for their result, so none of MIL's shape rules (0 copies a size, -1 takes the rest) is
written twice. Rearrangements of blocks (depth_to_space and the pixel shuffles) are reshapes and
transposes of each prediction, as the runtime computes them.
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import FOLDED, STACKED, Tensor, i32, normalized_axis, u32
from kerasml.coreai.lowering.mil.op import Op
from kerasml.coreai.lowering.registry import MIL_LOWERINGS, lowers


@lowers(MIL_LOWERINGS, "reshape", params="x shape")
@lowers(MIL_LOWERINGS, "squeeze", params="x axes")
@lowers(MIL_LOWERINGS, "expand_dims", params="x axes")
@lowers(MIL_LOWERINGS, "flatten2d", params="x axis")
@lowers(MIL_LOWERINGS, "reshape_like", params="x ref_tensors begins ends end_masks")
def reshape(op: Op) -> list:
    if op.kind == "reshape" and isinstance(op.get("shape"), Tensor):
        raise op.unsupported("a shape computed from the image")
    return [op.g.reshape(op.batched("x"), op.shape, op.dtype)]


@lowers(MIL_LOWERINGS, "transpose", params="x perm")
def transpose(op: Op) -> list:
    return [op.g.transpose(op.batched("x"), op.ints("perm"))]


@lowers(MIL_LOWERINGS, "slice_by_index", params="x begin end stride begin_mask end_mask squeeze_mask")
def slice_by_index(op: Op) -> list:
    x = op.batched("x")
    masks = {m: [bool(v) for v in np.ravel(op.const(m, np.zeros(x.rank, bool)))]
             for m in ("begin_mask", "end_mask", "squeeze_mask")}
    stride = op.ints("stride", None) or [1] * x.rank
    begin, end = op.ints("begin"), op.ints("end")
    picks = []
    for axis, n in enumerate(x.shape):   # which indices each axis keeps, by the runtime's own rule
        b = 0 if masks["begin_mask"][axis] else begin[axis]
        if masks["squeeze_mask"][axis]:
            picks.append(np.arange(n)[[b]])
            continue
        s = stride[axis]
        e = None if masks["end_mask"][axis] else end[axis]
        if masks["begin_mask"][axis] and s < 0:
            b = n - 1
        picks.append(np.arange(n)[slice(b, e, s)])
    return [op.g.reshape(_picked(op.g, x, picks), op.shape, op.dtype)]


@lowers(MIL_LOWERINGS, "slice_by_size", params="x begin size")
def slice_by_size(op: Op) -> list:
    x = op.batched("x")
    picks = []
    for b, s, n in zip(op.ints("begin"), op.ints("size"), x.shape):
        start = b + n if b < 0 else b
        picks.append(np.arange(n)[start:(n if s == -1 else start + s)])
    return [op.g.reshape(_picked(op.g, x, picks), op.shape, op.dtype)]


def _picked(g, x: Tensor, picks: list[np.ndarray]) -> Tensor:
    """x restricted to the given indices per axis, each an arithmetic progression (a slice), empty
    never; a decreasing one is read from the reversed axis."""
    reverse = [axis for axis, p in enumerate(picks) if len(p) > 1 and p[1] < p[0]]
    if reverse:
        t, core = g.on_axes(x, reverse)
        x = Tensor(g.A.reverse(t.value, i32(core)), t.shape, t.dtype, t.layout)
        picks = [x.shape[a] - 1 - p if a in reverse else p for a, p in enumerate(picks)]
    begin, end, stride = [], [], []
    for p in picks:
        if len(p) == 0:
            raise ValueError("a slice that keeps nothing")
        step = int(p[1] - p[0]) if len(p) > 1 else 1
        begin.append(int(p[0]))
        end.append(int(p[-1]) + 1)
        stride.append(step)
    return g.slice(x, begin, end, stride)


@lowers(MIL_LOWERINGS, "concat", params="values axis interleave")
def concat(op: Op) -> list:
    values = op.many("values")
    axis = normalized_axis(int(op.scalar("axis")), len(op.shape))
    if op.scalar("interleave", False):
        parts = [v if isinstance(v, Tensor) else np.asarray(v) for v in values]
        size = (parts[0].shape[axis])
        stacked = [_expanded(op.g, p, axis + 1) for p in parts]
        shape = op.shape[:axis] + (size, len(parts)) + op.shape[axis + 1:]
        joined = op.g.concat(stacked, axis + 1, shape, op.dtype)
        return [op.g.reshape(joined, op.shape)]
    return [op.g.concat(values, axis, op.shape, op.dtype)]


def _expanded(g, t, axis: int):
    if isinstance(t, Tensor):
        return g.reshape(t, t.shape[:axis] + (1,) + t.shape[axis:])
    return np.expand_dims(t, axis)


@lowers(MIL_LOWERINGS, "stack", params="values axis")
def stack(op: Op) -> list:
    axis = normalized_axis(int(op.scalar("axis")), len(op.shape))
    parts = [_expanded(op.g, v if isinstance(v, Tensor) else np.asarray(v), axis) for v in op.many("values")]
    return [op.g.concat(parts, axis, op.shape, op.dtype)]


@lowers(MIL_LOWERINGS, "split", params="x num_splits split_sizes axis")
def split(op: Op) -> list:
    x = op.batched("x")
    axis = normalized_axis(int(op.scalar("axis")), x.rank)
    sizes = [shape[axis] for shape in op.shapes]
    outputs, start = [], 0
    for size, shape in zip(sizes, op.shapes):
        begin = [0] * x.rank
        end = list(x.shape)
        begin[axis], end[axis] = start, start + size
        outputs.append(op.g.slice(x, begin, end, [1] * x.rank))
        start += size
    return outputs


@lowers(MIL_LOWERINGS, "pad", params="x pad mode constant_val")
def pad(op: Op) -> list:
    g, x = op.g, op.batched("x")
    amounts = op.ints("pad")
    mode = str(op.scalar("mode", "constant"))
    core_mode = {"constant": "constant", "reflect": "reflect", "replicate": "replicate"}.get(mode)
    if core_mode is None:
        raise op.unsupported(f"pad mode '{mode}'")
    pairs = [0, 0] * (x.rank - len(amounts) // 2) + amounts
    if x.layout == FOLDED and (pairs[0] or pairs[1]):
        x = g.stacked(x)
    widths = ([0, 0] if x.layout == STACKED else []) + pairs
    if x.layout == FOLDED:
        widths[:2] = [0, 0]
    value = g.A.pad(x.value, u32(widths), np.asarray(op.scalar("constant_val", 0.0), x.dtype), core_mode)
    layout = x.layout if x.layout == STACKED or op.shape[0] == 1 else STACKED
    return [Tensor(value, op.shape, op.dtype, layout)]


@lowers(MIL_LOWERINGS, "tile", params="x reps")
def tile(op: Op) -> list:
    g, x = op.g, op.batched("x")
    reps = op.ints("reps")
    reps = [1] * (x.rank - len(reps)) + reps
    if x.layout == FOLDED and reps[0] != 1:
        x = g.stacked(x)
    core = ([1] + reps) if x.layout == STACKED else [1] + reps[1:]
    return [Tensor(g.A.tile(x.value, u32(core)), op.shape, op.dtype, x.layout)]


@lowers(MIL_LOWERINGS, "reverse", params="x axes")
def reverse(op: Op) -> list:
    x = op.batched("x")
    axes = op.ints("axes", None)
    axes = list(range(x.rank)) if axes is None else axes
    x, core = op.g.on_axes(x, axes)
    return [Tensor(op.g.A.reverse(x.value, i32(core)), x.shape, x.dtype, x.layout)]


@lowers(MIL_LOWERINGS, "gather", params="x indices axis batch_dims validate_indices")
def gather(op: Op) -> list:
    """np.take with constant indices."""
    g, x = op.g, op.batched("x")
    if int(op.scalar("batch_dims", 0)):
        raise op.unsupported("batch_dims")
    axis = normalized_axis(int(op.scalar("axis", 0)), x.rank)
    flat = _in_range(op.const("indices"), x.shape[axis])
    return [g.reshape(_take(g, x, flat.reshape(-1), axis), op.shape)]


def _in_range(indices, size: int) -> np.ndarray:
    flat = np.asarray(indices, np.int64)
    flat = np.where(flat < 0, flat + size, flat)
    if flat.size and (flat.min() < 0 or flat.max() >= size):
        raise ValueError(f"indices out of range for an axis of {size}")
    return flat


def _take(g, x: Tensor, flat: np.ndarray, axis: int) -> Tensor:
    """x's entries `flat` (1-D, in range) along per-prediction `axis`: the axis moved to the front,
    Core AI's gather_nd, moved back."""
    x = g.stacked(x)
    core_axis = axis + 1
    perm = [core_axis] + [a for a in range(x.rank + 1) if a != core_axis]
    front = g.A.transpose(x.value, u32(perm))
    picked = g.A.gather_nd(front, flat.astype(np.int32).reshape(-1, 1))
    back = [perm.index(a) for a in range(x.rank + 1)]
    value = g.A.transpose(picked, u32(back))
    taken = x.shape[:axis] + (len(flat),) + x.shape[axis + 1:]
    return Tensor(value, taken, x.dtype, STACKED)


@lowers(MIL_LOWERINGS, "gather_nd", params="x indices batch_dims validate_indices")
def gather_nd(op: Op) -> list:
    """Constant (..., K) indices into the first K axes: those axes flattened, one np.take."""
    g, x = op.g, op.batched("x")
    if int(op.scalar("batch_dims", 0)):
        raise op.unsupported("batch_dims")
    indices = np.asarray(op.const("indices"), np.int64)
    k = indices.shape[-1]
    dims = x.shape[:k]
    columns = [_in_range(indices[..., i], d) for i, d in enumerate(dims)]
    flat = np.ravel_multi_index(columns, dims).reshape(-1) if k else np.zeros(0, np.int64)
    merged = g.reshape(x, (int(np.prod(dims)),) + x.shape[k:])
    return [g.reshape(_take(g, merged, flat, 0), op.shape)]


@lowers(MIL_LOWERINGS, "gather_along_axis", params="x indices axis validate_indices")
def gather_along_axis(op: Op) -> list:
    """np.take_along_axis with constant indices: for each output position, the flat position in x it
    reads, and one np.take over x flattened."""
    g, x = op.g, op.batched("x")
    axis = normalized_axis(int(op.scalar("axis", 0)), x.rank)
    indices = _in_range(op.const("indices"), x.shape[axis])
    grid = list(np.indices(indices.shape, sparse=False))
    grid[axis] = indices
    if any(i.max(initial=0) >= d for i, d in zip(grid, x.shape)):
        raise ValueError("indices whose shape does not fit the input's")
    flat = np.ravel_multi_index(grid, x.shape).reshape(-1)
    merged = g.reshape(x, (int(np.prod(x.shape)),))
    return [g.reshape(_take(g, merged, flat, 0), op.shape)]


@lowers(MIL_LOWERINGS, "depth_to_space", params="x block_size")
@lowers(MIL_LOWERINGS, "pixel_shuffle", params="x upscale_factor")
@lowers(MIL_LOWERINGS, "space_to_depth", params="x block_size")
@lowers(MIL_LOWERINGS, "pixel_unshuffle", params="x downscale_factor")
def rearrange_blocks(op: Op) -> list:
    g, x = op.g, op.batched("x")
    param = {"pixel_shuffle": "upscale_factor", "pixel_unshuffle": "downscale_factor"}.get(op.kind, "block_size")
    bs = int(op.scalar(param))
    n, c, h, w = x.shape
    channels_first = op.kind.startswith("pixel")
    if op.kind in ("depth_to_space", "pixel_shuffle"):
        if channels_first:
            y = g.transpose(g.reshape(x, (n, c // (bs * bs), bs, bs, h, w)), [0, 1, 4, 2, 5, 3])
        else:
            y = g.transpose(g.reshape(x, (n, bs, bs, c // (bs * bs), h, w)), [0, 3, 4, 1, 5, 2])
        return [g.reshape(y, op.shape)]
    y = g.reshape(x, (n, c, h // bs, bs, w // bs, bs))
    y = g.transpose(y, [0, 1, 3, 5, 2, 4] if channels_first else [0, 3, 5, 1, 2, 4])
    return [g.reshape(y, op.shape)]


@lowers(MIL_LOWERINGS, "shape", params="x")
def shape(op: Op) -> list:
    """Shapes are static: the shape of each prediction's value is a constant."""
    return [np.asarray(op.batched("x").shape, op.dtype or np.int32)]


@lowers(MIL_LOWERINGS, "fill_like", params="ref_tensor value")
def fill_like(op: Op) -> list:
    """A constant of the reference's (static) shape, joined to every prediction where it is used."""
    ref = op.batched("ref_tensor")
    return [np.full(ref.shape, op.scalar("value", 0.0), op.dtype)]
