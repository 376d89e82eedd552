"""NeuralNetwork layers that move data without arithmetic: the reshapes (rank-5 `reshape` and
`flatten` with their channel-last modes, `reshapeStatic`, `rankPreservingReshape`, `flattenTo2D`,
`squeeze`, `expandDims`, `copy`), `transpose` and the rank-5 `permute`, joining and splitting
(`concat`, `concatND`, `stack`, `split`, `splitND`), slicing (`slice`, `sliceStatic`), `reverse`,
`tile`, `gather` with constant indices, padding (`padding`, `constantPad`), `reorganizeData`, and
the broadcasts and fills.

A reshape is a reshape to the shape the runtime gives, so no NeuralNetwork shape rule (0 copies a
size, -1 takes the rest, squeezing) is written twice. A slice is worked out as the indices it keeps
of each axis (NumPy's own slicing of 0..n-1), so negative indices, masks and strides need no rules
of their own here either.
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import FOLDED, STACKED, Tensor, i32, normalized_axis, u32
from kerasml.coreai.lowering.nn.arith import F32, add, shape_of
from kerasml.coreai.lowering.nn.layer import Layer
from kerasml.coreai.lowering.registry import NN_LOWERINGS, lowers


def moved(rank: int, source: int, destination: int) -> list[int]:
    """The permutation np.moveaxis(x, source, destination) applies to a rank-`rank` array."""
    perm = list(range(rank))
    perm.insert(destination % rank, perm.pop(source % rank))
    return perm


@lowers(NN_LOWERINGS, "reshapeStatic", params="targetShape")
@lowers(NN_LOWERINGS, "rankPreservingReshape", params="targetShape")
@lowers(NN_LOWERINGS, "flattenTo2D", params="axis")
@lowers(NN_LOWERINGS, "squeeze", params="axes squeezeAll")
@lowers(NN_LOWERINGS, "expandDims", params="axes")
@lowers(NN_LOWERINGS, "copy", params="")
def reshaped(layer: Layer) -> list:
    return [layer.out(layer.x())]


@lowers(NN_LOWERINGS, "reshape", params="targetShape mode")
def reshape(layer: Layer) -> list:
    """Rank-5 reshape; CHANNEL_LAST reads and writes (C, H, W) in (H, W, C) order."""
    g, x = layer.g, layer.x()
    if layer.p.mode != 1:
        return [layer.out(x)]
    target = tuple(layer.shape)
    if x.rank >= 3:
        x = g.transpose(x, moved(x.rank, -3, -1))
    c, h, w = target[-3:]
    y = g.reshape(x, (*target[:-3], h, w, c))
    return [g.transpose(y, moved(y.rank, -1, -3))]


@lowers(NN_LOWERINGS, "flatten", params="mode")
def flatten(layer: Layer) -> list:
    g, x = layer.g, layer.x()
    if layer.p.mode == 1 and x.rank >= 3:     # CHANNEL_LAST: (H, W, C) order
        x = g.transpose(x, moved(x.rank, -3, -1))
    return [layer.out(x)]


@lowers(NN_LOWERINGS, "transpose", params="axes")
def transpose(layer: Layer) -> list:
    return [layer.g.transpose(layer.x(), list(layer.p.axes))]


@lowers(NN_LOWERINGS, "permute", params="axis")
def permute(layer: Layer) -> list:
    """Rank-5 permute: the axes (Seq, C, H, W) of a (C, H, W) blob (a Seq of 1) or of (..., C, H, W)
    with the leading axes as Seq."""
    g, x = layer.g, layer.x()
    axes = list(layer.p.axis)
    if sorted(axes) != [0, 1, 2, 3] or x.rank < 3:
        raise ValueError(f"axis {axes} on a blob of shape {x.shape}")
    lead = int(np.prod(x.shape[:-3])) if x.rank > 3 else 1
    return [layer.out(g.transpose(g.reshape(x, (lead, *x.shape[-3:])), axes))]


# -- joining and splitting --------------------------------------------------------------------------
@lowers(NN_LOWERINGS, "concat", params="sequenceConcat")
def concat(layer: Layer) -> list:
    """Rank-5 concat: along C (third from last; the last axis of a vector), or Seq (-5)."""
    rank = len(layer.shape)
    if layer.p.sequenceConcat:
        axis = rank - 5
    else:
        axis = rank - 3 if rank >= 3 else rank - 1
    return [layer.g.concat(list(layer.inputs), axis, layer.shape, F32)]


def _with_rank(g, v, rank: int):
    shape = shape_of(v)
    if len(shape) == rank:
        return v
    aligned = (1,) * (rank - len(shape)) + tuple(shape)
    return g.reshape(v, aligned) if isinstance(v, Tensor) else np.asarray(v).reshape(aligned)


@lowers(NN_LOWERINGS, "concatND", params="axis interleave")
def concat_nd(layer: Layer) -> list:
    g = layer.g
    rank = max(len(shape_of(v)) for v in layer.inputs)
    parts = [_with_rank(g, v, rank) for v in layer.inputs]
    axis = normalized_axis(int(layer.p.axis), rank)
    if not layer.p.interleave:
        return [g.concat(parts, axis, layer.shape, F32)]
    # output[i::k] = input i: each gets a new axis after `axis`, joined there, then merged into it
    first = shape_of(parts[0])
    expanded = [_with_axis(g, v, axis + 1) for v in parts]
    joined = g.concat(expanded, axis + 1, (*first[:axis + 1], len(parts), *first[axis + 1:]), F32)
    return [layer.out(joined)]


def _with_axis(g, v, axis: int):
    shape = shape_of(v)
    new = (*shape[:axis], 1, *shape[axis:])
    return g.reshape(v, new) if isinstance(v, Tensor) else np.asarray(v).reshape(new)


@lowers(NN_LOWERINGS, "stack", params="axis")
def stack(layer: Layer) -> list:
    g = layer.g
    axis = normalized_axis(int(layer.p.axis), len(layer.shape))
    parts = [_with_axis(g, v, axis) for v in layer.inputs]
    return [g.concat(parts, axis, layer.shape, F32)]


def _split(layer: Layer, axis: int) -> list:
    g, x = layer.g, layer.x()
    outputs, start = [], 0
    for shape in layer.shapes:
        begin, end = [0] * x.rank, list(x.shape)
        begin[axis], end[axis] = start, start + shape[axis]
        outputs.append(g.slice(x, begin, end, [1] * x.rank))
        start += shape[axis]
    return outputs


@lowers(NN_LOWERINGS, "splitND", params="axis numSplits splitSizes")
def split_nd(layer: Layer) -> list:
    return _split(layer, normalized_axis(int(layer.p.axis), layer.x().rank))


@lowers(NN_LOWERINGS, "split", params="nOutputs")
def split(layer: Layer) -> list:
    return _split(layer, layer.x().rank - 3)


# -- slicing ----------------------------------------------------------------------------------------
def picked(g, x: Tensor, picks: list[np.ndarray]) -> Tensor:
    """x restricted to the given indices of each axis (each an arithmetic progression, as a slice
    keeps them); a decreasing one is read from the reversed axis."""
    backwards = [axis for axis, p in enumerate(picks) if len(p) > 1 and p[1] < p[0]]
    if backwards:
        t, core = g.on_axes(x, backwards)
        x = Tensor(g.A.reverse(t.value, i32(core)), t.shape, t.dtype, t.layout)
        picks = [x.shape[a] - 1 - p if a in backwards else p for a, p in enumerate(picks)]
    begin, end, stride = [], [], []
    for p in picks:
        if len(p) == 0:
            raise ValueError("a slice that keeps nothing")
        begin.append(int(p[0]))
        end.append(int(p[-1]) + 1)
        stride.append(int(p[1] - p[0]) if len(p) > 1 else 1)
    return g.slice(x, begin, end, stride)


@lowers(NN_LOWERINGS, "slice", params="startIndex endIndex stride axis")
def slice_(layer: Layer) -> list:
    """Rank-5 slice of C, H or W; negative indices count from the end."""
    g, p, x = layer.g, layer.p, layer.x()
    axis = x.rank + {0: -3, 1: -2, 2: -1}[p.axis]
    n = x.shape[axis]
    start = p.startIndex + n if p.startIndex < 0 else p.startIndex
    end = p.endIndex + n if p.endIndex < 0 else p.endIndex
    picks = [np.arange(d) for d in x.shape]
    picks[axis] = picks[axis][start:end:int(p.stride)]
    return [picked(g, x, picks)]


@lowers(NN_LOWERINGS, "sliceStatic", params="beginIds beginMasks endIds endMasks strides squeezeMasks")
def slice_static(layer: Layer) -> list:
    """TensorFlow's strided slice, as `numerics.strided_slice` reads the masks."""
    g, p, x = layer.g, layer.p, layer.x()
    rank = len(p.beginIds)
    squeeze = list(p.squeezeMasks) or [False] * rank
    picks = []
    for i, n in enumerate(x.shape):
        b = 0 if p.beginMasks[i] else int(p.beginIds[i])
        if squeeze[i]:
            picks.append(np.arange(n)[[b]])
            continue
        s = int(p.strides[i]) if len(p.strides) else 1
        e = None if p.endMasks[i] else int(p.endIds[i])
        if p.beginMasks[i] and s < 0:
            b = n - 1
        picks.append(np.arange(n)[b:e:s])
    return [layer.out(picked(g, x, picks))]


@lowers(NN_LOWERINGS, "reverse", params="reverseDim")
def reverse(layer: Layer) -> list:
    g, x = layer.g, layer.x()
    axes = [i for i, flag in enumerate(layer.p.reverseDim) if flag]
    if not axes:
        return [x]
    t, core = g.on_axes(x, axes)
    return [Tensor(g.A.reverse(t.value, i32(core)), t.shape, t.dtype, t.layout)]


@lowers(NN_LOWERINGS, "tile", params="reps")
def tile(layer: Layer) -> list:
    g, x = layer.g, layer.x()
    reps = [int(r) for r in (np.ravel(layer.const(1)) if len(layer.inputs) == 2 else layer.p.reps)]
    if len(reps) > x.rank:
        raise layer.unsupported(f"{len(reps)} repetitions for a rank-{x.rank} input")
    reps = [1] * (x.rank - len(reps)) + reps
    if x.layout == FOLDED and reps[0] != 1:
        x = g.stacked(x)
    core = [1, *reps] if x.layout == STACKED else [1, *reps[1:]]
    return [Tensor(g.A.tile(x.value, u32(core)), tuple(layer.shape), F32, x.layout)]


@lowers(NN_LOWERINGS, "gather", params="axis")
def gather(layer: Layer) -> list:
    """np.take with constant indices: the axis moved to the front, Core AI's gather_nd, moved back."""
    g, x = layer.g, layer.x()
    indices = layer.const(1).astype(np.int64)
    axis = normalized_axis(int(layer.p.axis), x.rank)
    flat = indices.reshape(-1)
    flat = np.where(flat < 0, flat + x.shape[axis], flat)
    if flat.size and (flat.min() < 0 or flat.max() >= x.shape[axis]):
        raise ValueError(f"gather index out of range for an axis of {x.shape[axis]}")
    x = g.stacked(x)
    core = axis + 1
    perm = [core] + [a for a in range(x.rank + 1) if a != core]
    front = g.A.transpose(x.value, u32(perm))
    taken = g.A.gather_nd(front, flat.astype(np.int32).reshape(-1, 1))
    value = g.A.transpose(taken, u32([perm.index(a) for a in range(x.rank + 1)]))
    shape = (*x.shape[:axis], len(flat), *x.shape[axis + 1:])
    return [layer.out(Tensor(value, shape, F32, STACKED))]


# -- padding ----------------------------------------------------------------------------------------
def _pad_axes(g, x: Tensor, pairs: list[tuple[int, int]], value: float, mode: str, shape) -> Tensor:
    """x padded by (before, after) per per-prediction axis."""
    if x.layout == FOLDED and any(pairs[0]):
        x = g.stacked(x)
    widths = [w for pair in pairs for w in pair]
    widths = [0, 0, *widths] if x.layout == STACKED else [0, 0, *widths[2:]]
    if not any(widths):
        return x
    padded = g.A.pad(x.value, u32(widths), np.asarray(value, np.float32), mode)
    return Tensor(padded, tuple(shape), F32, x.layout)


@lowers(NN_LOWERINGS, "padding", params="constant reflection replication paddingAmounts")
def padding(layer: Layer) -> list:
    """The last two axes, padded with a constant, reflected (the edge not repeated) or replicated."""
    from kerasml.runtime.nn.common import border

    p, x = layer.p, layer.x()
    top, bottom, left, right = border(p.paddingAmounts, layer.name)
    kind = p.WhichOneof("PaddingType") or "constant"
    mode = {"constant": "constant", "reflection": "reflect", "replication": "replicate"}[kind]
    pairs = [(0, 0)] * (x.rank - 2) + [(top, bottom), (left, right)]
    return [_pad_axes(layer.g, x, pairs, p.constant.value if kind == "constant" else 0.0, mode, layer.shape)]


@lowers(NN_LOWERINGS, "constantPad", params="value padAmounts padToGivenOutputSizeMode")
def constant_pad(layer: Layer) -> list:
    p, x = layer.p, layer.x()
    if len(layer.inputs) != 1:
        raise layer.unsupported("pad amounts given as a second input")
    amounts = [int(v) for v in p.padAmounts]
    if len(amounts) != 2 * x.rank:
        raise ValueError(f"{len(amounts)} pad amounts for rank {x.rank}")
    pairs = [(amounts[2 * i], amounts[2 * i + 1]) for i in range(x.rank)]
    if p.padToGivenOutputSizeMode:
        pairs = [(max(b - d, 0), 0) if b else (0, max(e - d, 0)) for (b, e), d in zip(pairs, x.shape)]
    return [_pad_axes(layer.g, x, pairs, p.value, "constant", layer.shape)]


@lowers(NN_LOWERINGS, "reorganizeData", params="mode blockSize")
def reorganize_data(layer: Layer) -> list:
    """Space to depth, depth to space and pixel shuffle: a reshape, a transpose of the last five axes
    (the runtime's np.moveaxis), a reshape."""
    g, p, x = layer.g, layer.p, layer.x()
    b = int(p.blockSize)
    if x.rank < 3:
        raise ValueError(f"needs a (C, H, W) input, got shape {x.shape}")
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    if p.mode == 0:
        blocks, source, destination = (c, h // b, b, w // b, b), (-5, -3, -1), (-3, -5, -4)
    elif p.mode == 1:
        blocks, source, destination = (b, b, c // (b * b), h, w), (-5, -4, -3), (-3, -1, -5)
    else:
        blocks, source, destination = (c // (b * b), b, b, h, w), (-4, -3), (-3, -1)
    sizes = np.moveaxis(np.empty(tuple(range(2, 7)), np.uint8), source, destination).shape
    perm = [len(lead) + s - 2 for s in sizes]
    y = g.reshape(x, (*lead, *blocks))
    y = g.transpose(y, list(range(len(lead))) + perm)
    return [layer.out(y)]


# -- broadcasts and fills -----------------------------------------------------------------------------
@lowers(NN_LOWERINGS, "broadcastToStatic", params="targetShape")
@lowers(NN_LOWERINGS, "broadcastToLike", params="")
def broadcast_to(layer: Layer) -> list:
    """x + zeros of the result's shape (adding 0 keeps every value)."""
    return [layer.out(add(layer.g, layer.x(), np.zeros(layer.shape, np.float32)))]


@lowers(NN_LOWERINGS, "fillLike", params="value")
def fill_like(layer: Layer) -> list:
    """A constant: only the input's shape, which is fixed, matters."""
    return [np.full(layer.shape, layer.p.value, np.float32)]


@lowers(NN_LOWERINGS, "getShape", params="")
def get_shape(layer: Layer) -> list:
    return [np.asarray(layer.x().shape, np.float32)]
