"""ML Program ops, one function per op type, registered in `OPS` with `@op("name", ...)`.

An op function takes `Args` and returns the list of its outputs. Values computed per batch carry a
leading axis of independent predictions (`args.batched(param)` says which do); constants do not.
Arithmetic runs in float32 (`args.f32`); the engine casts each result to the declared dtype.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from kerasml.errors import KerasmlError
from kerasml.runtime import numerics
from kerasml.runtime.errors import UnsupportedModelError

OPS: dict[str, Callable[["Args"], list]] = {}
_REQUIRED = object()


def op(*names: str):
    def register(fn):
        for name in names:
            OPS[name] = fn
        return fn

    return register


class Args:
    """An op's inputs by parameter name, with which of them carry the batch axis."""

    def __init__(self, name: str, kind: str, values: dict, flags: dict, dtypes: list, ws=None):
        self.name, self.kind, self.dtypes = name, kind, dtypes
        self._values, self._flags = values, flags
        self.ws = ws

    def has(self, param: str) -> bool:
        return param in self._values

    def get(self, param: str, default=_REQUIRED):
        if param not in self._values:
            if default is _REQUIRED:
                raise KerasmlError(f"op '{self.name}' ({self.kind}) lacks its '{param}' input; the model is malformed")
            return default
        return self._values[param][0]

    def many(self, param: str) -> list:
        return list(self._values.get(param, []))

    def batched(self, param: str) -> bool:
        return bool(self._flags.get(param, [False])[0])

    def f32(self, param: str, default=_REQUIRED):
        value = self.get(param, default)
        return value.astype(np.float32) if isinstance(value, np.ndarray) and value.dtype == np.float16 else value

    def scalar(self, param: str, default=_REQUIRED):
        value = self.get(param, default)
        return value.item() if isinstance(value, np.ndarray) else value

    def ints(self, param: str, default=_REQUIRED) -> list[int]:
        value = self.get(param, default)
        return [int(v) for v in np.ravel(value)] if value is not None else None

    def unsupported(self, what: str) -> UnsupportedModelError:
        return UnsupportedModelError(
            f"op '{self.name}' ({self.kind}) uses {what}, which the kerasml runtime does not implement"
        )


def _axis(axis: int, x: np.ndarray, batched: bool) -> int:
    rank = x.ndim - batched
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return (axis + rank if axis < 0 else axis) + batched


def _align(arrays: list[np.ndarray], flags: list[bool]) -> list[np.ndarray]:
    """Batched operands get new axes after the batch axis so per-prediction ranks line up."""
    rank = max(a.ndim - f for a, f in zip(arrays, flags))
    return [
        a.reshape(a.shape[:1] + (1,) * (rank - a.ndim + 1) + a.shape[1:]) if f and a.ndim - 1 < rank else a
        for a, f in zip(arrays, flags)
    ]


# -- elementwise ----------------------------------------------------------------------------------
def _unary(fn):
    return lambda args: [fn(args.f32("x"), args)]


for _name, _fn in {
    "relu": lambda x, a: np.maximum(x, 0),
    "relu6": lambda x, a: np.clip(x, 0, 6),
    "sigmoid": lambda x, a: 1 / (1 + np.exp(-x)),
    "tanh": lambda x, a: np.tanh(x),
    "exp": lambda x, a: np.exp(x),
    "sqrt": lambda x, a: np.sqrt(x),
    "rsqrt": lambda x, a: 1 / np.sqrt(x + np.float32(a.scalar("epsilon", 1e-12))),
    "abs": lambda x, a: np.abs(x),
    "square": lambda x, a: x * x,
    "identity": lambda x, a: x,
    "softsign": lambda x, a: x / (1 + np.abs(x)),
    "softplus": lambda x, a: np.logaddexp(x, np.float32(0)),
    "silu": lambda x, a: x / (1 + np.exp(-x)),
    "leaky_relu": lambda x, a: np.where(x >= 0, x, x * np.float32(a.scalar("alpha", 0.01))),
    "elu": lambda x, a: np.where(x > 0, x, np.float32(a.scalar("alpha", 1.0)) * np.expm1(np.minimum(x, 0))),
    "clip": lambda x, a: np.clip(x, a.scalar("alpha"), a.scalar("beta")),
    "linear_activation": lambda x, a: np.float32(a.scalar("alpha")) * x + np.float32(a.scalar("beta", 0.0)),
    "sigmoid_hard": lambda x, a: np.clip(
        np.float32(a.scalar("alpha", 0.2)) * x + np.float32(a.scalar("beta", 0.5)), 0, 1
    ),
    "scaled_tanh": lambda x, a: np.float32(a.scalar("alpha", 1.0)) * np.tanh(np.float32(a.scalar("beta", 1.0)) * x),
    "cast": lambda x, a: x,  # the engine casts every result to the declared output dtype
}.items():
    OPS[_name] = _unary(_fn)


@op("gelu")
def gelu(args: Args) -> list:
    x, mode = args.f32("x"), args.scalar("mode", "EXACT")
    if mode == "TANH_APPROXIMATION":
        return [0.5 * x * (1 + np.tanh(np.float32(0.7978845608) * (x + np.float32(0.044715) * x**3)))]
    if mode == "SIGMOID_APPROXIMATION":
        return [x / (1 + np.exp(np.float32(-1.702) * x))]
    try:
        from scipy.special import erf
    except ImportError:
        raise args.unsupported("exact gelu without scipy installed") from None
    return [(0.5 * x * (1 + erf(x / np.float32(np.sqrt(2))))).astype(np.float32)]


def _binary(fn):
    def run(args: Args) -> list:
        x, y = args.f32("x"), args.f32("y")
        x, y = _align([np.asarray(x), np.asarray(y)], [args.batched("x"), args.batched("y")])
        return [fn(x, y)]

    return run


for _name, _fn in {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "real_div": np.divide,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "pow": np.power,
}.items():
    OPS[_name] = _binary(_fn)


# -- convolution and pooling ----------------------------------------------------------------------
def _spatial_pads(args: Args, x: np.ndarray, kernel, strides, dilations) -> tuple[int, int, int, int]:
    pad_type = args.scalar("pad_type", "valid")
    if pad_type == "valid":
        return (0, 0, 0, 0)
    if pad_type == "custom":
        pads = args.ints("pad")
        if len(pads) != 4:
            raise ValueError(f"pad {pads} must have 4 values for a 2-D op")
        return tuple(pads)
    if pad_type in ("same", "same_lower"):
        lower = pad_type == "same_lower"
        return numerics.same_pads(
            x.shape[-2], kernel[0], strides[0], dilations[0], top_heavy=lower
        ) + numerics.same_pads(x.shape[-1], kernel[1], strides[1], dilations[1], top_heavy=lower)
    raise args.unsupported(f"pad_type '{pad_type}'")


def _images(args: Args, x: np.ndarray) -> np.ndarray:
    if x.ndim - args.batched("x") != 4:
        raise args.unsupported(f"a rank-{x.ndim - args.batched('x')} input (only 2-D images are implemented)")
    return x.reshape((-1,) + x.shape[-3:])


@op("conv")
def conv(args: Args) -> list:
    x = args.f32("x")
    w = args.f32("weight")
    if args.batched("weight") or w.ndim != 4:
        raise args.unsupported("computed or non-2-D weights")
    strides = args.ints("strides", None) or [1, 1]
    dilations = args.ints("dilations", None) or [1, 1]
    bias = args.f32("bias", None)
    pads = _spatial_pads(args, x, w.shape[2:], strides, dilations)
    y = numerics.conv2d(
        _images(args, x),
        w,
        None if bias is None else bias.astype(np.float32),
        stride=tuple(strides),
        dilation=tuple(dilations),
        pads=pads,
        groups=int(args.scalar("groups", 1)),
        ws=args.ws,
    )
    return [y.reshape(x.shape[:-3] + y.shape[1:])]


def _pool(kind: str):
    def run(args: Args) -> list:
        x = args.f32("x")
        kernel, strides = args.ints("kernel_sizes"), args.ints("strides", None) or [1, 1]
        if len(kernel) != 2:
            raise args.unsupported(f"{len(kernel)}-D pooling")
        pads = _spatial_pads(args, x, kernel, strides, (1, 1))
        h, w = x.shape[-2:]
        if args.scalar("pad_type", "valid") in ("same", "same_lower"):
            out = (-(-h // strides[0]), -(-w // strides[1]))
        else:
            ceil = bool(args.scalar("ceil_mode", False))
            out = (
                numerics.pool_out_size(h, kernel[0], strides[0], pads[0], pads[1], ceil=ceil),
                numerics.pool_out_size(w, kernel[1], strides[1], pads[2], pads[3], ceil=ceil),
            )
        exclude = bool(args.scalar("exclude_padding_from_average", False))
        y = numerics.pool2d(
            _images(args, x), kind, tuple(kernel), tuple(strides), pads, out, exclude_padding=exclude, ws=args.ws
        )
        return [y.reshape(x.shape[:-3] + y.shape[1:])]

    return run


OPS["max_pool"] = _pool("max")
OPS["avg_pool"] = _pool("avg")


# -- dense ----------------------------------------------------------------------------------------
@op("linear")
def linear(args: Args) -> list:
    x, w = args.f32("x"), args.f32("weight")
    if args.batched("weight"):
        raise args.unsupported("computed weights")
    y = x @ w.T
    bias = args.f32("bias", None)
    return [y + bias if bias is not None else y]


@op("matmul")
def matmul(args: Args) -> list:
    x, y = np.asarray(args.f32("x")), np.asarray(args.f32("y"))
    bx, by = args.batched("x"), args.batched("y")
    if x.ndim - bx < 2 or y.ndim - by < 2:
        raise args.unsupported("matmul of rank-1 operands")
    if args.scalar("transpose_x", False):
        x = np.swapaxes(x, -1, -2)
    if args.scalar("transpose_y", False):
        y = np.swapaxes(y, -1, -2)
    x, y = _align([x, y], [bx, by])
    return [np.matmul(x, y)]


# -- shapes ---------------------------------------------------------------------------------------
@op("reshape")
def reshape(args: Args) -> list:
    x, b = args.get("x"), args.batched("x")
    example = x.shape[1:] if b else x.shape
    target = [example[i] if s == 0 else s for i, s in enumerate(args.ints("shape"))]
    return [x.reshape(((x.shape[0],) if b else ()) + tuple(target))]


@op("transpose")
def transpose(args: Args) -> list:
    x, b = args.get("x"), args.batched("x")
    perm = [_axis(p, x, b) for p in args.ints("perm")]
    return [x.transpose(([0] if b else []) + perm)]


@op("squeeze")
def squeeze(args: Args) -> list:
    x, b = args.get("x"), args.batched("x")
    axes = args.ints("axes", None)
    if axes is None:
        axes = [i for i, d in enumerate(x.shape[b:]) if d == 1]
    return [np.squeeze(x, axis=tuple(_axis(a, x, b) for a in axes))]


@op("expand_dims")
def expand_dims(args: Args) -> list:
    x, b = args.get("x"), args.batched("x")
    axes = args.ints("axes")
    rank = x.ndim - b + len(axes)
    return [np.expand_dims(x, tuple(sorted((a + rank if a < 0 else a) + b for a in axes)))]


@op("flatten2d")
def flatten2d(args: Args) -> list:
    x, b = args.get("x"), args.batched("x")
    axis = _axis(args.scalar("axis", 1), np.empty(x.shape + (1,)), b) if args.has("axis") else 1 + b
    lead = x.shape[:b]
    return [x.reshape(lead + (int(np.prod(x.shape[b:axis])), -1))]


@op("concat")
def concat(args: Args) -> list:
    if args.scalar("interleave", False):
        raise args.unsupported("interleaved concatenation")
    values, flags = args.many("values"), list(args._flags.get("values", []))
    n = next((v.shape[0] for v, f in zip(values, flags) if f), None)
    if n is not None:
        values = [v if f else np.broadcast_to(v, (n,) + v.shape) for v, f in zip(values, flags)]
    return [np.concatenate(values, axis=_axis(args.scalar("axis"), values[0], n is not None))]


@op("pad")
def pad(args: Args) -> list:
    x = args.f32("x")
    amounts = args.ints("pad")
    mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}.get(args.scalar("mode", "constant"))
    if mode is None:
        raise args.unsupported(f"pad mode '{args.scalar('mode')}'")
    pairs = [(amounts[i], amounts[i + 1]) for i in range(0, len(amounts), 2)]
    width = [(0, 0)] * (x.ndim - len(pairs)) + pairs
    extra = {"constant_values": args.scalar("constant_val", 0.0)} if mode == "constant" else {}
    return [np.pad(x, width, mode=mode, **extra)]


@op("upsample_nearest_neighbor")
def upsample_nearest_neighbor(args: Args) -> list:
    fh, fw = args.scalar("scale_factor_height", 1), args.scalar("scale_factor_width", 1)
    if int(fh) != fh or int(fw) != fw:
        raise args.unsupported("fractional scale factors")
    return [numerics.upsample_nearest(args.get("x"), int(fh), int(fw))]


# -- normalisation and reductions -----------------------------------------------------------------
@op("softmax")
def softmax(args: Args) -> list:
    x = args.f32("x")
    return [numerics.softmax(x, _axis(args.scalar("axis", -1), x, args.batched("x")))]


@op("batch_norm")
def batch_norm(args: Args) -> list:
    x, b = args.f32("x"), args.batched("x")
    mean, var = args.f32("mean"), args.f32("variance")
    gamma, beta = args.f32("gamma", None), args.f32("beta", None)
    eps = np.float32(args.scalar("epsilon", 1e-5))
    scale = (1 / np.sqrt(var + eps)) * (gamma if gamma is not None else 1)
    shift = (beta if beta is not None else 0) - mean * scale
    tail = (1,) * (x.ndim - b - 2)  # channels are axis 1 of each prediction
    return [x * scale.reshape((-1,) + tail) + np.reshape(shift, (-1,) + tail)]


def _reduce(fn):
    def run(args: Args) -> list:
        x, b = args.f32("x"), args.batched("x")
        axes = args.ints("axes", None)
        axes = tuple(range(b, x.ndim)) if axes is None else tuple(_axis(a, x, b) for a in axes)
        return [fn(x, axis=axes, keepdims=bool(args.scalar("keep_dims", False)))]

    return run


for _name, _fn in {"reduce_mean": np.mean, "reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min}.items():
    OPS[_name] = _reduce(_fn)


@op("slice_by_index")
def slice_by_index(args: Args) -> list:
    x, b = args.get("x"), args.batched("x")
    rank = x.ndim - b
    masks = {
        m: [bool(v) for v in np.ravel(args.get(m, np.zeros(rank, bool)))]
        for m in ("begin_mask", "end_mask", "squeeze_mask")
    }
    stride = args.ints("stride", None) or [1] * rank
    return [
        numerics.strided_slice(
            x,
            args.ints("begin"),
            args.ints("end"),
            stride,
            masks["begin_mask"],
            masks["end_mask"],
            masks["squeeze_mask"],
            lead=int(b),
        )
    ]


@op("upsample_bilinear")
def upsample_bilinear(args: Args) -> list:
    x = args.f32("x")
    fh, fw = args.scalar("scale_factor_height", 1), args.scalar("scale_factor_width", 1)
    if args.scalar("half_pixel_centers", None) is not None and args.scalar("half_pixel_centers") != (
        not args.scalar("align_corners", True)
    ):
        raise args.unsupported("half_pixel_centers that differs from align_corners")
    align = bool(args.scalar("align_corners", True))
    return [numerics.resize_bilinear(x, int(x.shape[-2] * fh), int(x.shape[-1] * fw), align_corners=align)]


@op("tile")
def tile(args: Args) -> list:
    x, b = args.get("x"), args.batched("x")
    return [np.tile(x, ([1] if b else []) + args.ints("reps"))]


# More ops live in their own modules; importing them registers them here (later ones replace
# the simpler versions above: mil_conv's conv and pooling take 1-D and 3-D too).
from kerasml.runtime import (  # noqa: E402, F401
    mil_activation,
    mil_constexpr,
    mil_conv,
    mil_elementwise,
    mil_gather,
    mil_linear,
    mil_norm,
    mil_quantize,
    mil_recurrent,
    mil_reduce,
    mil_resize,
    mil_tensor,
)
