"""ML Program convolution and pooling in 1, 2 and 3 spatial dimensions, and conv_transpose.

2-D work goes to `kernels.conv2d`/`pool2d` (the classifier's hot path); 1-D runs as 2-D with a
height of one; 3-D convolution sums 2-D convolutions over the depth taps, and 1-D/3-D pooling
uses a general window reduction. Padding follows the MIL definitions: `valid`, `custom`
(before/after per spatial axis), `same` (TensorFlow's: the odd pixel after) and `same_lower`
(the odd pixel before). conv_transpose uses `kernels.conv_transpose2d` (shared with the
NeuralNetwork deconvolution layer).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kerasml.runtime import kernels
from kerasml.runtime.mil.args import Args
from kerasml.runtime.registry import CONST, IOS17, MIL_OPS, OPTIONAL, OPTIONAL_CONST, TENSOR, InputSpec

_GEOMETRY = InputSpec(strides=OPTIONAL_CONST, pad_type=OPTIONAL_CONST, pad=OPTIONAL_CONST, dilations=OPTIONAL_CONST,
                      groups=OPTIONAL_CONST)
CONV = _GEOMETRY.but(x=TENSOR, weight=TENSOR, bias=OPTIONAL_CONST)
CONV_TRANSPOSE = CONV.but(weight=CONST, output_shape=OPTIONAL_CONST)
POOL = InputSpec(x=TENSOR, kernel_sizes=CONST, strides=OPTIONAL_CONST, pad_type=CONST, pad=OPTIONAL_CONST,
                 ceil_mode=OPTIONAL_CONST)


def _pads(args: Args, sizes, kernel, strides, dilations) -> list[tuple[int, int]]:
    pad_type = args.scalar("pad_type", "valid")
    k = len(sizes)
    if pad_type == "valid":
        return [(0, 0)] * k
    if pad_type == "custom":
        pads = args.ints("pad", None) or [0] * (2 * k)
        if len(pads) != 2 * k:
            raise ValueError(f"pad {pads} must have {2 * k} values for a {k}-D op")
        return [(pads[2 * i], pads[2 * i + 1]) for i in range(k)]
    if pad_type in ("same", "same_lower"):
        lower = pad_type == "same_lower"
        return [kernels.same_pads(s, kk, st, d, top_heavy=lower) for s, kk, st, d in zip(sizes, kernel, strides, dilations)]
    raise args.unsupported(f"pad_type '{pad_type}'")


def _spatial_params(args: Args, k: int) -> tuple[list[int], list[int]]:
    strides = args.ints("strides", None) or [1] * k
    dilations = args.ints("dilations", None) or [1] * k
    if len(strides) != k or len(dilations) != k:
        raise ValueError(f"strides {strides} and dilations {dilations} must have {k} values")
    return strides, dilations


def _flat(x: np.ndarray, k: int) -> tuple[np.ndarray, tuple]:
    """(M, C, *D) from any number of leading axes (the engine's batch and the program's n)."""
    lead = x.shape[: -(k + 1)]
    return x.reshape((-1,) + x.shape[-(k + 1) :]), lead


def conv_nd(x, w, bias, strides, dilations, pads, groups, ws=None) -> np.ndarray:
    """Cross-correlation of x (M, C, *D) with w (C_out, C / groups, *K), k = 1, 2 or 3."""
    k = w.ndim - 2
    if k == 1:
        y = kernels.conv2d(
            x[:, :, None, :], w[:, :, None, :], bias, stride=(1, strides[0]), dilation=(1, dilations[0]),
            pads=(0, 0) + tuple(pads[0]), groups=groups,
        )
        return np.array(y[:, :, 0, :])
    if k == 2:
        # the channels-last view itself, no copy: the next convolution reads it without transposing
        return kernels.conv2d(
            x, w, bias, stride=tuple(strides), dilation=tuple(dilations), pads=pads[0] + pads[1], groups=groups, ws=ws
        )
    if k != 3:
        raise ValueError(f"{k}-D convolution is not defined")
    x = np.pad(x, ((0, 0), (0, 0), pads[0], (0, 0), (0, 0)))
    kd, sd, dd = w.shape[2], strides[0], dilations[0]
    out_d = (x.shape[2] - dd * (kd - 1) - 1) // sd + 1
    if out_d <= 0:
        raise ValueError(f"a depth-{kd} kernel does not fit a depth of {x.shape[2]}")
    planes = []
    for od in range(out_d):
        acc = None
        for t in range(kd):
            y = kernels.conv2d(
                x[:, :, od * sd + t * dd], w[:, :, t], None, stride=tuple(strides[1:]),
                dilation=tuple(dilations[1:]), pads=pads[1] + pads[2], groups=groups,
            )
            acc = np.array(y) if acc is None else acc + y
        planes.append(acc)
    out = np.stack(planes, axis=2)
    return out + bias.reshape(-1, 1, 1, 1) if bias is not None else out


@MIL_OPS.register("conv", inputs=CONV)
@MIL_OPS.register("conv", opset=IOS17, inputs=CONV.but(bias=OPTIONAL))  # bias may be computed
def conv(args: Args) -> list:
    x, w = np.asarray(args.f32("x")), np.asarray(args.f32("weight"))
    if args.batched("weight"):  # weights computed per prediction (iOS 17): one prediction at a time
        return [np.stack([_conv_one(args, xi, wi) for xi, wi in zip(x, w)])]
    return [_conv_one(args, x, w, args.ws)]


def _conv_one(args: Args, x: np.ndarray, w: np.ndarray, ws=None) -> np.ndarray:
    k = w.ndim - 2
    bias = args.f32("bias", None)
    xs, lead = _flat(x, k)
    strides, dilations = _spatial_params(args, k)
    pads = _pads(args, xs.shape[2:], w.shape[2:], strides, dilations)
    groups = int(args.scalar("groups", 1))
    y = conv_nd(xs, w, None if bias is None else np.asarray(bias, np.float32), strides, dilations, pads, groups, ws)
    return y.reshape(lead + y.shape[1:])


@MIL_OPS.register("conv_transpose", inputs=CONV_TRANSPOSE)
@MIL_OPS.register("conv_transpose", opset=IOS17, inputs=CONV_TRANSPOSE.but(weight=TENSOR, bias=OPTIONAL))
def conv_transpose(args: Args) -> list:
    x, w = np.asarray(args.f32("x")), np.asarray(args.f32("weight"))
    if args.batched("weight"):
        raise args.unsupported("computed weights")
    k = w.ndim - 2
    xs, lead = _flat(x, k)
    strides, dilations = _spatial_params(args, k)
    groups = int(args.scalar("groups", 1))
    full = [(n - 1) * s + (kk - 1) * d + 1 for n, s, kk, d in zip(xs.shape[2:], strides, w.shape[2:], dilations)]
    pad_type = args.scalar("pad_type", "valid")
    pads = args.ints("pad", None) or [0] * (2 * k)
    if pad_type == "valid":
        crops = [(0, 0)] * k
    elif pad_type == "custom":
        crops = [(pads[2 * i], pads[2 * i + 1]) for i in range(k)]
    elif pad_type == "same":  # output n * stride; as TensorFlow, the odd row is cut at the end, and a
        # result shorter than that (stride above the kernel's extent) is extended with zeros
        totals = [max(f - n * s, 0) for f, n, s in zip(full, xs.shape[2:], strides)]
        crops = [(t // 2, t - t // 2) for t in totals]
    else:
        raise args.unsupported(f"pad_type '{pad_type}'")
    sizes = [f - a - b for f, (a, b) in zip(full, crops)]
    if pad_type == "same":
        sizes = [n * s for n, s in zip(xs.shape[2:], strides)]
    if args.get("output_shape", None) is not None:
        sizes = args.ints("output_shape")[-k:]
    bias = args.f32("bias", None)
    bias = None if bias is None else np.asarray(bias, np.float32)
    y = _transpose_nd(xs, w, bias, strides, dilations, crops, sizes, groups)
    return [y.reshape(lead + y.shape[1:])]


def _transpose_nd(x, w, bias, strides, dilations, crops, sizes, groups) -> np.ndarray:
    k = w.ndim - 2
    if k == 1:
        y = kernels.conv_transpose2d(
            x[:, :, None, :], w[:, :, None, :], bias, stride=(1, strides[0]), dilation=(1, dilations[0]),
            crop=(0, 0) + tuple(crops[0]), out_size=(1, sizes[0]), groups=groups,
        )
        return y[:, :, 0, :]
    if k == 2:
        return kernels.conv_transpose2d(
            x, w, bias, stride=tuple(strides), dilation=tuple(dilations), crop=crops[0] + crops[1],
            out_size=tuple(sizes), groups=groups,
        )
    # 3-D: every (input plane, kernel plane) pair adds a 2-D transposed convolution to one output plane
    depth, kd = x.shape[2], w.shape[2]
    full_d = (depth - 1) * strides[0] + (kd - 1) * dilations[0] + 1
    planes = None
    for i in range(depth):
        for t in range(kd):
            y = kernels.conv_transpose2d(
                x[:, :, i], w[:, :, t], None, stride=tuple(strides[1:]), dilation=tuple(dilations[1:]),
                crop=crops[1] + crops[2], out_size=tuple(sizes[1:]), groups=groups,
            )
            if planes is None:
                planes = np.zeros(y.shape[:2] + (full_d,) + y.shape[2:], np.float32)
            planes[:, :, i * strides[0] + t * dilations[0]] += y
    out = np.zeros(planes.shape[:2] + (sizes[0],) + planes.shape[3:], np.float32)
    src = planes[:, :, crops[0][0] : crops[0][0] + sizes[0]]
    out[:, :, : src.shape[2]] = src
    return out + bias.reshape(-1, 1, 1, 1) if bias is not None else out


# -- pooling ---------------------------------------------------------------------------------------
def _pool(kind: str):
    def run(args: Args) -> list:
        x = np.asarray(args.f32("x"))
        kernel = args.ints("kernel_sizes")
        k = len(kernel)
        xs, lead = _flat(x, k)
        strides = args.ints("strides", None) or [1] * k
        pads = _pads(args, xs.shape[2:], kernel, strides, [1] * k)
        if args.scalar("pad_type", "valid") in ("same", "same_lower"):
            out = [-(-n // s) for n, s in zip(xs.shape[2:], strides)]
        else:
            ceil = bool(args.scalar("ceil_mode", False))
            out = [
                kernels.pool_out_size(n, kk, s, a, b, ceil=ceil)
                for n, kk, s, (a, b) in zip(xs.shape[2:], kernel, strides, pads)
            ]
        exclude = bool(args.scalar("exclude_padding_from_average", False))
        if k == 2 and kind in ("max", "avg"):
            y = kernels.pool2d(xs, kind, tuple(kernel), tuple(strides), pads[0] + pads[1], tuple(out),
                                exclude_padding=exclude, ws=args.ws)
        else:
            y = pool_nd(xs, kind, kernel, strides, pads, out, exclude)
        return [y.reshape(lead + y.shape[1:])]

    return run


def pool_nd(x, kind, kernel, strides, pads, out, exclude) -> np.ndarray:
    """Max, average or L2 pooling of x (M, C, *D) over any number of spatial axes."""
    k = len(kernel)
    need = [(o - 1) * s + kk for o, s, kk in zip(out, strides, kernel)]
    widths = [(a, max(b, n - a - d)) for (a, b), n, d in zip(pads, need, x.shape[2:])]
    fill = -np.inf if kind == "max" else 0.0
    padded = np.pad(x, [(0, 0), (0, 0)] + widths, constant_values=fill)
    axes = tuple(range(2, 2 + k))
    win = sliding_window_view(padded, kernel, axis=axes)
    win = win[(slice(None), slice(None)) + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, strides))]
    window_axes = tuple(range(-k, 0))
    if kind == "max":
        return win.max(axis=window_axes)
    if kind == "l2":
        return np.sqrt((win * win).sum(axis=window_axes))
    counted = np.zeros(padded.shape[2:], np.float32)
    inside = tuple(slice(a, a + d) if exclude else slice(0, a + d + b) for (a, b), d in zip(pads, x.shape[2:]))
    counted[inside] = 1
    cwin = sliding_window_view(counted, kernel)
    cwin = cwin[tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, strides))]
    return win.sum(axis=window_axes) / np.maximum(cwin.sum(axis=window_axes), 1)


MIL_OPS.add("max_pool", _pool("max"), inputs=POOL)
MIL_OPS.add("avg_pool", _pool("avg"), inputs=POOL.but(exclude_padding_from_average=OPTIONAL_CONST))
MIL_OPS.add("l2_pool", _pool("l2"), inputs=POOL)
