"""ML Program tensor operations and transformations, one prediction at a time (`per_prediction`).

Semantics follow coremltools' MIL definitions (ops/defs/iOS15/tensor_operation.py,
tensor_transformation.py): `depth_to_space`/`space_to_depth` use TensorFlow's channel order
(block offsets outermost), `pixel_shuffle`/`pixel_unshuffle` PyTorch's (channels outermost);
`band_part` keeps everything on a side whose bound is negative; `slice_by_size` reads size -1 as
"to the end".
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.mil.args import Args
from kerasml.runtime.mil.per_prediction import per_prediction
from kerasml.runtime.registry import CONST, IOS16, IOS17, IOS18, MIL_OPS, OPTIONAL_CONST, TENSOR, InputSpec

TOPK = InputSpec(x=TENSOR, k=OPTIONAL_CONST, axis=OPTIONAL_CONST, ascending=OPTIONAL_CONST)


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _x(args: Args, name: str = "x") -> np.ndarray:
    return np.asarray(args.f32(name))


@MIL_OPS.register("reshape", inputs=InputSpec(x=TENSOR, shape=TENSOR))
def reshape(args: Args) -> list:
    """0 in the shape copies the input's size on the axis it lines up with counting from the right,
    or 1 where none does (iOS 17; iOS 15-16 allow 0 only where shape and input have the same rank,
    where both rules agree); -1 takes what is left."""
    if args.batched("shape"):
        return _reshape_each(args)
    x, b = args.get("x"), args.batched("x")
    example = x.shape[1:] if b else x.shape
    shape = args.ints("shape")
    lined_up = [len(example) - len(shape) + i for i in range(len(shape))]
    target = [s if s != 0 else (example[j] if 0 <= j < len(example) else 1) for s, j in zip(shape, lined_up)]
    return [x.reshape(((x.shape[0],) if b else ()) + tuple(target))]


@per_prediction
def _reshape_each(args: Args) -> list:
    return reshape(args)


@MIL_OPS.register("slice_by_size", inputs=InputSpec(x=TENSOR, begin=TENSOR, size=TENSOR))
@per_prediction
def slice_by_size(args: Args) -> list:
    x = np.asarray(args.get("x"))
    begin, size = args.ints("begin"), args.ints("size")
    index = tuple(
        slice(b + n if b < 0 else b, (n if s == -1 else (b + n if b < 0 else b) + s))
        for b, s, n in zip(begin, size, x.shape)
    )
    return [x[index]]


@MIL_OPS.register("split",
                  inputs=InputSpec(x=TENSOR, num_splits=OPTIONAL_CONST, split_sizes=OPTIONAL_CONST, axis=CONST))
@per_prediction
def split(args: Args) -> list:
    x = np.asarray(args.get("x"))
    axis = _axis(args.scalar("axis"), x.ndim)
    sizes = args.ints("split_sizes", None)
    if sizes is None:
        return list(np.split(x, int(args.scalar("num_splits")), axis=axis))
    return list(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


@MIL_OPS.register("stack", inputs=InputSpec(values=TENSOR, axis=CONST))
@per_prediction
def stack(args: Args) -> list:
    values = [np.asarray(v) for v in args.many("values")]
    return [np.stack(values, axis=_axis(args.scalar("axis"), values[0].ndim + 1))]


@MIL_OPS.register("concat", inputs=InputSpec(values=TENSOR, axis=CONST, interleave=OPTIONAL_CONST))
@per_prediction
def concat(args: Args) -> list:
    """With `interleave`, the result takes one slice of each input in turn along the axis."""
    values = [np.asarray(v) for v in args.many("values")]
    axis = _axis(args.scalar("axis"), values[0].ndim)
    if not args.scalar("interleave", False):
        return [np.concatenate(values, axis=axis)]
    size = values[0].shape[axis]
    if any(v.shape[axis] != size for v in values):
        raise ValueError("interleaved inputs must have the same size along the axis")
    stacked = np.stack(values, axis=axis + 1)  # (..., size, inputs, ...)
    return [stacked.reshape(values[0].shape[:axis] + (size * len(values),) + values[0].shape[axis + 1 :])]


@MIL_OPS.register("reverse", inputs=InputSpec(x=TENSOR, axes=OPTIONAL_CONST))
@per_prediction
def reverse(args: Args) -> list:
    x = np.asarray(args.get("x"))
    axes = args.ints("axes", None)
    return [np.flip(x, axis=None if axes is None else tuple(_axis(a, x.ndim) for a in axes))]


@MIL_OPS.register("reverse_sequence",
                  inputs=InputSpec(x=TENSOR, lengths=TENSOR, seq_axis=OPTIONAL_CONST, batch_axis=OPTIONAL_CONST))
@per_prediction
def reverse_sequence(args: Args) -> list:
    x = np.array(args.get("x"))
    lengths = args.ints("lengths")
    seq, batch = _axis(args.scalar("seq_axis", 0), x.ndim), _axis(args.scalar("batch_axis", 0), x.ndim)
    out = x.copy()
    for i, n in enumerate(lengths):
        src = [slice(None)] * x.ndim
        src[batch], src[seq] = i, slice(0, n)
        dst = list(src)
        dst[seq] = slice(n - 1, None, -1) if n > 0 else slice(0, 0)
        out[tuple(src)] = x[tuple(dst)]
    return [out]


def _blocks_to_space(x: np.ndarray, bs: int, channels_first: bool) -> np.ndarray:
    n, c, h, w = x.shape
    if channels_first:  # PyTorch pixel_shuffle: channel index c * bs^2 + i * bs + j
        y = x.reshape(n, c // (bs * bs), bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:  # TensorFlow depth_to_space: channel index (i * bs + j) * C + c
        y = x.reshape(n, bs, bs, c // (bs * bs), h, w).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (bs * bs), h * bs, w * bs)


def _space_to_blocks(x: np.ndarray, bs: int, channels_first: bool) -> np.ndarray:
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // bs, bs, w // bs, bs)
    y = y.transpose(0, 1, 3, 5, 2, 4) if channels_first else y.transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * bs * bs, h // bs, w // bs)


@MIL_OPS.register("depth_to_space", "space_to_depth", inputs=InputSpec(x=TENSOR, block_size=CONST))
@MIL_OPS.register("pixel_shuffle", inputs=InputSpec(x=TENSOR, upscale_factor=CONST))
@MIL_OPS.register("pixel_unshuffle", opset=IOS16, inputs=InputSpec(x=TENSOR, downscale_factor=CONST))
@per_prediction
def rearrange_blocks(args: Args) -> list:
    x = np.asarray(args.get("x"))
    param = {"depth_to_space": "block_size", "space_to_depth": "block_size"}.get(args.kind)
    bs = int(args.scalar(param or ("upscale_factor" if args.kind == "pixel_shuffle" else "downscale_factor")))
    pixel = args.kind.startswith("pixel")
    if args.kind in ("depth_to_space", "pixel_shuffle"):
        return [_blocks_to_space(x, bs, pixel)]
    return [_space_to_blocks(x, bs, pixel)]


@MIL_OPS.register("band_part", inputs=InputSpec(x=TENSOR, lower=OPTIONAL_CONST, upper=OPTIONAL_CONST))
@per_prediction
def band_part(args: Args) -> list:
    x = np.asarray(args.get("x"))
    lower, upper = int(args.scalar("lower", -1)), int(args.scalar("upper", -1))
    m, n = np.indices(x.shape[-2:])
    keep = ((lower < 0) | (m - n <= lower)) & ((upper < 0) | (n - m <= upper))
    return [np.where(keep, x, np.zeros((), x.dtype))]


@MIL_OPS.register("cumsum",
                  inputs=InputSpec(x=TENSOR, axis=OPTIONAL_CONST, exclusive=OPTIONAL_CONST, reverse=OPTIONAL_CONST))
@per_prediction
def cumsum(args: Args) -> list:
    x = np.asarray(args.f32("x"))
    axis = _axis(args.scalar("axis", 0), x.ndim)
    if args.scalar("reverse", False):
        x = np.flip(x, axis)
    y = np.cumsum(x, axis=axis)
    if args.scalar("exclusive", False):
        y = y - x
    return [np.flip(y, axis) if args.scalar("reverse", False) else y]


@MIL_OPS.register("fill", inputs=InputSpec(shape=TENSOR, value=OPTIONAL_CONST))
@per_prediction
def fill(args: Args) -> list:
    return [np.full(args.ints("shape"), args.scalar("value", 0.0))]


@MIL_OPS.register("fill_like", opset=IOS16, inputs=InputSpec(ref_tensor=TENSOR, value=OPTIONAL_CONST))
@per_prediction
def fill_like(args: Args) -> list:
    return [np.full(np.shape(args.get("ref_tensor")), args.scalar("value", 0.0))]


@MIL_OPS.register("shape", inputs=InputSpec(x=TENSOR))
@per_prediction
def shape(args: Args) -> list:
    return [np.array(np.shape(args.get("x")), np.int32)]


@MIL_OPS.register("identity", inputs=InputSpec(x=TENSOR))
def identity(args: Args) -> list:
    return [args.get("x")]


@MIL_OPS.register("range_1d", inputs=InputSpec(end=TENSOR, start=TENSOR, step=TENSOR))
@per_prediction
def range_1d(args: Args) -> list:
    return [np.arange(args.scalar("start"), args.scalar("end"), args.scalar("step"))]


@MIL_OPS.register("one_hot", inputs=InputSpec(indices=TENSOR, one_hot_vector_size=TENSOR, axis=OPTIONAL_CONST,
                                             on_value=OPTIONAL_CONST, off_value=OPTIONAL_CONST))
@per_prediction
def one_hot(args: Args) -> list:
    indices = np.asarray(args.get("indices")).astype(np.int64)
    depth = int(args.scalar("one_hot_vector_size"))
    axis = _axis(args.scalar("axis", -1), indices.ndim + 1)
    on, off = args.scalar("on_value", 1), args.scalar("off_value", 0)
    hot = np.moveaxis(np.arange(depth) == indices[..., None], -1, axis)
    return [np.where(hot, on, off)]


@MIL_OPS.register("non_zero", inputs=InputSpec(x=TENSOR))
@per_prediction
def non_zero(args: Args) -> list:
    return [np.argwhere(np.asarray(args.get("x")) != 0).astype(np.int32)]


@MIL_OPS.register("argsort", inputs=InputSpec(x=TENSOR, axis=OPTIONAL_CONST, ascending=OPTIONAL_CONST))
@per_prediction
def argsort(args: Args) -> list:
    x = np.asarray(args.f32("x"))
    axis = _axis(args.scalar("axis", -1), x.ndim)
    key = x if args.scalar("ascending", False) else -x
    return [np.argsort(key, axis=axis, kind="stable").astype(np.int32)]


@MIL_OPS.register("topk", inputs=TOPK)
@MIL_OPS.register("topk", opset=IOS16, inputs=TOPK.but(sort=OPTIONAL_CONST, return_indices=OPTIONAL_CONST))
@MIL_OPS.register("topk", opset=IOS17,
                  inputs=TOPK.but(sort=OPTIONAL_CONST, return_indices=OPTIONAL_CONST, output_indices_dtype=OPTIONAL_CONST))
@per_prediction
def topk(args: Args) -> list:
    x = np.asarray(args.f32("x"))
    axis = _axis(args.scalar("axis", -1), x.ndim)
    k = int(args.scalar("k", 1))
    if not args.scalar("sort", True):
        raise args.unsupported("sort=False (the order Core ML returns unsorted results in is not specified)")
    key = x if args.scalar("ascending", False) else -x
    order = np.take(np.argsort(key, axis=axis, kind="stable"), np.arange(k if k >= 0 else x.shape[axis]), axis=axis)
    values = np.take_along_axis(x, order, axis=axis)
    if not args.scalar("return_indices", True):
        return [values]
    return [values, order.astype(np.int32)]


@MIL_OPS.register("sliding_windows", inputs=InputSpec(x=TENSOR, axis=CONST, size=CONST, stride=OPTIONAL_CONST))
@per_prediction
def sliding_windows(args: Args) -> list:
    x = np.asarray(args.get("x"))
    axis = _axis(args.scalar("axis"), x.ndim)
    size, stride = int(args.scalar("size")), int(args.scalar("stride", 1))
    starts = range(0, x.shape[axis] - size + 1, stride)
    windows = [np.take(x, np.arange(s, s + size), axis=axis) for s in starts]
    return [np.stack(windows, axis=axis)]


@MIL_OPS.register("space_to_batch", inputs=InputSpec(x=TENSOR, block_shape=CONST, paddings=CONST))
@MIL_OPS.register("batch_to_space", inputs=InputSpec(x=TENSOR, block_shape=CONST, crops=CONST))
@per_prediction
def space_batch(args: Args) -> list:
    x = np.asarray(args.get("x"))
    bh, bw = args.ints("block_shape")
    n, c, h, w = x.shape
    if args.kind == "space_to_batch":
        (pt, pb), (pl, pr) = np.reshape(args.ints("paddings"), (2, 2))
        x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        h, w = x.shape[2:]
        y = x.reshape(n, c, h // bh, bh, w // bw, bw).transpose(3, 5, 0, 1, 2, 4)
        return [y.reshape(bh * bw * n, c, h // bh, w // bw)]
    (ct, cb), (cl, cr) = np.reshape(args.ints("crops"), (2, 2))
    y = x.reshape(bh, bw, n // (bh * bw), c, h, w).transpose(2, 3, 4, 0, 5, 1)
    y = y.reshape(n // (bh * bw), c, h * bh, w * bw)
    return [y[:, :, ct : h * bh - cb, cl : w * bw - cr]]


@MIL_OPS.register("pad", inputs=InputSpec(x=TENSOR, pad=TENSOR, mode=OPTIONAL_CONST, constant_val=OPTIONAL_CONST))
def pad(args: Args) -> list:
    """A whole batch at once when the amounts and the value are the same for every prediction."""
    if args.batched("pad") or args.batched("constant_val"):
        return _pad_each(args)
    return _pad(args)


def _pad(args: Args) -> list:
    x = np.asarray(args.f32("x"))
    amounts = args.ints("pad")
    mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}.get(args.scalar("mode", "constant"))
    if mode is None:
        raise args.unsupported(f"pad mode '{args.scalar('mode')}'")
    pairs = [(amounts[i], amounts[i + 1]) for i in range(0, len(amounts), 2)]
    width = [(0, 0)] * (x.ndim - len(pairs)) + pairs
    if mode == "constant":  # keeps the channels-last layout convolutions hand on
        return [kernels.pad_constant(x, width, args.scalar("constant_val", 0.0))]
    return [np.pad(x, width, mode=mode)]


_pad_each = per_prediction(_pad)


@MIL_OPS.register("tile", inputs=InputSpec(x=TENSOR, reps=TENSOR))
@per_prediction
def tile(args: Args) -> list:
    return [np.tile(np.asarray(args.get("x")), args.ints("reps"))]


@MIL_OPS.register("slice_update", opset=IOS18, inputs=InputSpec(x=TENSOR, update=TENSOR, begin=TENSOR, end=TENSOR,
                  stride=OPTIONAL_CONST, begin_mask=OPTIONAL_CONST, end_mask=OPTIONAL_CONST, squeeze_mask=OPTIONAL_CONST))
@per_prediction
def slice_update(args: Args) -> list:
    """x with the elements that slice_by_index would select replaced by `update`."""
    x = np.array(args.get("x"))
    masks = [[bool(v) for v in np.ravel(args.get(m, np.zeros(x.ndim, bool)))] for m in ("begin_mask", "end_mask", "squeeze_mask")]
    stride = args.ints("stride", None) or [1] * x.ndim
    positions = kernels.strided_slice(
        np.arange(x.size).reshape(x.shape), args.ints("begin"), args.ints("end"), stride, *masks, lead=0
    )
    x.flat[np.ravel(positions)] = np.ravel(np.broadcast_to(args.get("update"), positions.shape))
    return [x]


@MIL_OPS.register("reshape_like", opset=IOS16,
                  inputs=InputSpec(x=TENSOR, ref_tensors=TENSOR, begins=TENSOR, ends=TENSOR, end_masks=TENSOR))
@per_prediction
def reshape_like(args: Args) -> list:
    """The output shape is the concatenation of ref_tensors[i].shape[begins[i]:ends[i]] (to the end
    where end_masks[i])."""
    refs = args.many("ref_tensors")
    # tuples arrive as one binding per element
    begins, ends, masks = ([np.ravel(v)[0] for v in args.many(p)] for p in ("begins", "ends", "end_masks"))
    shape = []
    for ref, b, e, m in zip(refs, begins, ends, masks):
        shape += list(np.shape(ref)[int(b) :] if m else np.shape(ref)[int(b) : int(e)])
    return [np.reshape(args.get("x"), shape)]
