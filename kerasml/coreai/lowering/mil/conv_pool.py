"""ML Program convolution, transposed convolution and pooling in one and two spatial dimensions.

Core AI's conv2d has no padding argument, so MIL's padding (`valid`, `custom`, `same`: the odd
pixel after, `same_lower`: before) becomes a `pad` op first; 1-D ops run as 2-D ones of height
one. Transposed convolution is written as what it is — the input spread out by the stride with
zeros between, then an ordinary convolution with the kernel flipped — because Core AI's own
conv_transpose2d cannot work out its output size for an open batch. Average pooling is a sum pool
divided by how many real pixels each window covered (kerasml computes that map once); max pooling
pads with -inf.
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import Tensor, i32, u32
from kerasml.coreai.lowering.mil.op import Op
from kerasml.coreai.lowering.registry import MIL_LOWERINGS, lowers
from kerasml.runtime import numerics


def _pads(op: Op, sizes, kernel, strides, dilations) -> list[tuple[int, int]]:
    pad_type = str(op.scalar("pad_type", "valid"))
    k = len(sizes)
    if pad_type == "valid":
        return [(0, 0)] * k
    if pad_type == "custom":
        pads = op.ints("pad", None) or [0] * (2 * k)
        if len(pads) != 2 * k:
            raise ValueError(f"pad {pads} must have {2 * k} values for a {k}-D op")
        return [(pads[2 * i], pads[2 * i + 1]) for i in range(k)]
    if pad_type in ("same", "same_lower"):
        return [numerics.same_pads(s, kk, st, d, top_heavy=pad_type == "same_lower")
                for s, kk, st, d in zip(sizes, kernel, strides, dilations)]
    raise op.unsupported(f"pad_type '{pad_type}'")


def _spatial_params(op: Op, k: int) -> tuple[list[int], list[int]]:
    strides = op.ints("strides", None) or [1] * k
    dilations = op.ints("dilations", None) or [1] * k
    if len(strides) != k or len(dilations) != k:
        raise ValueError(f"strides {strides} and dilations {dilations} must have {k} values")
    return strides, dilations


def _as_2d(g, value, shape, k: int):
    """A (M, C, W) value as (M, C, 1, W) for the 2-D ops; 2-D values as they are."""
    if k == 2:
        return value
    return g.A.reshape(value, i32((-1, shape[1], 1, shape[2])))


def _pad_value(g, value, pads: list[tuple[int, int]], fill: float, dtype):
    """value (M, C, H, W) padded on its last two axes by `pads` ((top, bottom), (left, right))."""
    if not any(a or b for a, b in pads):
        return value
    widths = [0, 0, 0, 0] + [p for pair in pads for p in pair]
    return g.A.pad(value, u32(widths), np.asarray(fill, dtype))


def _weight_2d(g, weight, k: int):
    """Weights (C_out, C_in / groups, *K) as a 2-D kernel; a computed (SHARED) weight stays a Value."""
    if isinstance(weight, Tensor):
        if k == 1:
            out, per_group, width = weight.shape
            return g.A.reshape(weight.value, i32((out, per_group, 1, width)))
        return weight.value
    weight = np.asarray(weight)
    return np.ascontiguousarray(weight[:, :, None, :] if k == 1 else weight)


def _add_bias(g, value, bias, dtype):
    if bias is None:
        return value
    if isinstance(bias, Tensor):
        return g.A.broadcasting_add(value, g.A.reshape(bias.value, i32((1, -1, 1, 1))))
    return g.A.broadcasting_add(value, np.asarray(bias, dtype).reshape(1, -1, 1, 1))


@lowers(MIL_LOWERINGS, "conv", params="x weight bias strides pad_type pad dilations groups")
def conv(op: Op) -> list:
    g, x = op.g, op.batched("x")
    weight = op.tensor("weight")
    if isinstance(weight, Tensor) and weight.batched:
        raise op.unsupported("weights computed from the image")
    k = x.rank - 2
    if k not in (1, 2):
        raise op.unsupported(f"{k}-D convolution")
    kernel = list(weight.shape[2:])
    strides, dilations = _spatial_params(op, k)
    pads = _pads(op, x.shape[2:], kernel, strides, dilations)
    value, batch = g.spatial(x, k)
    value = _as_2d(g, value, x.shape, k)
    if k == 1:
        pads, strides, dilations = [(0, 0), pads[0]], [1, strides[0]], [1, dilations[0]]
    value = _pad_value(g, value, pads, 0.0, x.dtype)
    value = g.A.conv2d(value, _weight_2d(g, weight, k), u32(strides), u32(dilations),
                       np.uint32(int(op.scalar("groups", 1))))
    value = _add_bias(g, value, op.tensor("bias", None), op.dtype)
    if k == 1:
        value = g.A.reshape(value, i32((-1, *op.shape[1:])))
    return [g.from_spatial(value, op.shape, op.dtype, batch)]


@lowers(MIL_LOWERINGS, "conv_transpose",
        params="x weight bias strides pad_type pad dilations groups output_shape")
def conv_transpose(op: Op) -> list:
    g, x = op.g, op.batched("x")
    weight = op.tensor("weight")
    if isinstance(weight, Tensor) and weight.batched:
        raise op.unsupported("weights computed from the image")
    k = x.rank - 2
    if k not in (1, 2):
        raise op.unsupported(f"{k}-D transposed convolution")
    strides, dilations = _spatial_params(op, k)
    groups = int(op.scalar("groups", 1))
    sizes = list(x.shape[2:])
    full = [(n - 1) * s + (kk - 1) * d + 1 for n, s, kk, d in zip(sizes, strides, weight.shape[2:], dilations)]
    crops = _transpose_crops(op, k, full, sizes, strides)
    value, batch = g.spatial(x, k)
    value = _as_2d(g, value, x.shape, k)
    if k == 1:
        strides, dilations = [1, strides[0]], [1, dilations[0]]
        full, crops, sizes = [1, full[0]], [(0, 0), crops[0]], [1, sizes[0]]
    kernel = [1, weight.shape[2]] if k == 1 else list(weight.shape[2:])
    value = _spread(g, value, x.shape[1], sizes, strides, x.dtype)
    reach = [d * (kk - 1) for d, kk in zip(dilations, kernel)]
    value = _pad_value(g, value, [(r, r) for r in reach], 0.0, x.dtype)
    if isinstance(weight, Tensor):      # decompressed by Core AI: rearranged there too
        flipped = _flipped_value(g, weight, groups, kernel)
    else:
        w = np.asarray(weight, np.float32)
        w = w[:, :, None, :] if k == 1 else w
        flipped = _flipped_for_conv(w, groups).astype(x.dtype)
    value = g.A.conv2d(value, flipped, u32([1, 1]), u32(dilations), np.uint32(groups))
    out = list(op.shape[2:]) if k == 2 else [1, op.shape[2]]
    value = _crop_to(g, value, full, crops, out, x.dtype)
    value = _add_bias(g, value, op.tensor("bias", None), op.dtype)
    if k == 1:
        value = g.A.reshape(value, i32((-1, *op.shape[1:])))
    return [g.from_spatial(value, op.shape, op.dtype, batch)]


def _transpose_crops(op: Op, k: int, full, sizes, strides) -> list[tuple[int, int]]:
    pad_type = str(op.scalar("pad_type", "valid"))
    if pad_type == "valid":
        return [(0, 0)] * k
    if pad_type == "custom":
        pads = op.ints("pad", None) or [0] * (2 * k)
        return [(pads[2 * i], pads[2 * i + 1]) for i in range(k)]
    if pad_type == "same":   # as TensorFlow: output n * stride, the odd row cut at the end
        totals = [max(f - n * s, 0) for f, n, s in zip(full, sizes, strides)]
        return [(t // 2, t - t // 2) for t in totals]
    raise op.unsupported(f"pad_type '{pad_type}'")


def _spread(g, value, channels: int, sizes, strides, dtype):
    """(M, C, H, W) → (M, C, (H - 1) sh + 1, (W - 1) sw + 1) with stride - 1 zeros between pixels."""
    (h, w), (sh, sw) = sizes, strides
    if sh == sw == 1:
        return value
    value = g.A.reshape(value, i32((-1, channels, h, 1, w, 1)))
    value = g.A.pad(value, u32([0, 0, 0, 0, 0, 0, 0, sh - 1, 0, 0, 0, sw - 1]), np.asarray(0, dtype))
    value = g.A.reshape(value, i32((-1, channels, h * sh, w * sw)))
    end = [np.iinfo(np.int32).max, channels, (h - 1) * sh + 1, (w - 1) * sw + 1]
    return g.A.slice_(value, i32([0, 0, 0, 0]), i32(end), i32([1, 1, 1, 1]))


def _flipped_for_conv(w: np.ndarray, groups: int) -> np.ndarray:
    """conv_transpose weights (C_in, C_out / groups, kH, kW) as the ordinary convolution that computes
    the same: (C_out, C_in / groups, kH, kW), each kernel turned by 180 degrees."""
    c_in, cout_g = w.shape[:2]
    cin_g = c_in // groups
    parts = [w[g * cin_g:(g + 1) * cin_g].transpose(1, 0, 2, 3) for g in range(groups)]
    return np.ascontiguousarray(np.concatenate(parts, axis=0)[:, :, ::-1, ::-1])


def _flipped_value(g, weight: Tensor, groups: int, kernel) -> object:
    """`_flipped_for_conv` on a SHARED Core AI value (C_in, C_out / groups, *K)."""
    c_in, cout_g = weight.shape[:2]
    cin_g = c_in // groups
    kh, kw = kernel
    value = g.A.reshape(weight.value, i32((groups, cin_g, cout_g, kh, kw)))
    value = g.A.transpose(value, u32([0, 2, 1, 3, 4]))
    value = g.A.reshape(value, i32((groups * cout_g, cin_g, kh, kw)))
    return g.A.reverse(value, i32([2, 3]))


def _crop_to(g, value, full, crops, out, dtype):
    """value (M, C, *full) cropped by `crops` ((before, after) per axis) to `out`, zeros past the full result."""
    starts = [a for a, _ in crops]
    ends = [min(f, s + o) for f, s, o in zip(full, starts, out)]
    value = g.A.slice_(value, i32([0, 0, *starts]), i32([np.iinfo(np.int32).max, np.iinfo(np.int32).max, *ends]),
                       i32([1, 1, 1, 1]))
    missing = [o - (e - s) for o, s, e in zip(out, starts, ends)]
    if any(missing):
        value = g.A.pad(value, u32([0, 0, 0, 0, 0, missing[0], 0, missing[1]]), np.asarray(0, dtype))
    return value


def _pool(kind: str):
    def lower(op: Op) -> list:
        g, x = op.g, op.batched("x")
        kernel = op.ints("kernel_sizes")
        k = len(kernel)
        if k not in (1, 2) or x.rank != k + 2:
            raise op.unsupported(f"{k}-D pooling")
        strides = op.ints("strides", None) or [1] * k
        pads = _pads(op, x.shape[2:], kernel, strides, [1] * k)
        out = list(op.shape[2:])
        # windows that run past the padded input (ceil mode, `same`) read padding there too
        need = [(o - 1) * s + kk for o, s, kk in zip(out, strides, kernel)]
        declared = list(pads)       # an average counts these pads, not the windows' overhang
        pads = [(a, max(b, need_i - a - n)) for (a, b), need_i, n in zip(pads, need, x.shape[2:])]
        value, batch = g.spatial(x, k)
        value = _as_2d(g, value, x.shape, k)
        if k == 1:
            kernel, strides, pads, out = [1, kernel[0]], [1, strides[0]], [(0, 0), pads[0]], [1, out[0]]
            declared = [(0, 0), declared[0]]
            sizes = [1, x.shape[2]]
        else:
            sizes = list(x.shape[2:])
        fill = -np.inf if kind == "max" else 0.0
        value = _pad_value(g, value, pads, fill, x.dtype)
        if kind == "max":
            shape = (-1, x.shape[1], *out)
            value = g.A.maxpool2d(g.A.TensorType(shape, x.dtype.type), value, u32(kernel), u32(strides),
                                  u32([1, 1]), False)
        else:
            squared = kind == "l2"
            if squared:
                value = g.A.broadcasting_mul(value, value)
            value = sum_pool(g, value, kernel, strides, out, x.shape[1])
            if squared:
                value = g.A.sqrt(value)
            else:
                exclude = bool(op.scalar("exclude_padding_from_average", False))
                counts = _window_counts(sizes, kernel, strides, pads, declared, out, exclude)
                value = g.A.broadcasting_divide(value, counts.astype(x.dtype))
        value = g.A.reshape(value, i32((-1, *op.shape[1:]))) if k == 1 else value
        return [g.from_spatial(value, op.shape, op.dtype, batch)]
    return lower


def sum_pool(g, value, kernel, strides, out, channels):
    # b3's sumpool2d takes its dilation only as an explicit constant
    from coreai.authoring.constant import constant

    value = g.A.sumpool2d(value, u32(kernel), u32(strides), constant(u32([1, 1])))
    return g.A.slice_(value, i32([0, 0, 0, 0]), i32([np.iinfo(np.int32).max, channels, *out]), i32([1, 1, 1, 1]))


def _window_counts(sizes, kernel, strides, pads, declared, out, exclude: bool) -> np.ndarray:
    """How many pixels each average window divides by: the real ones (`exclude`) or real and declared
    padding (`pads` also hold what windows past the padded input read, in ceil mode)."""
    covered = np.zeros([a + n + b for (a, b), n in zip(pads, sizes)], np.float32)
    inside = tuple(slice(a, a + n) if exclude else slice(0, a + n + d) for (a, b), (_, d), n
                   in zip(pads, declared, sizes))
    covered[inside] = 1
    counts = np.empty(out, np.float32)
    for i in range(out[0]):
        for j in range(out[1]):
            r, c = i * strides[0], j * strides[1]
            counts[i, j] = covered[r:r + kernel[0], c:c + kernel[1]].sum()
    return np.maximum(counts, 1).reshape(1, 1, *out)


for _kind in ("max", "avg", "l2"):
    lowers(MIL_LOWERINGS, f"{_kind}_pool",
           params="x kernel_sizes strides pad_type pad ceil_mode exclude_padding_from_average")(_pool(_kind))
