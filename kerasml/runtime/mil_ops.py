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
def _reused(args: Args, x) -> np.ndarray | None:
    """The step's own output buffer for a float32 batch (fresh arrays of this size cost page faults)."""
    if args.ws is None or not isinstance(x, np.ndarray) or x.dtype != np.float32:
        return None
    return args.ws.like("out", x)


def _unary(fn):
    return lambda args: [fn(args.f32("x"), args)]


for _name, _fn in {
    "relu": lambda x, a: np.maximum(x, np.float32(0), out=_reused(a, x)),
    "relu6": lambda x, a: np.clip(x, np.float32(0), np.float32(6), out=_reused(a, x)),
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


# The other ops live in their own modules (convolution and pooling, tensor transformations,
# resizing, recurrent, ...); importing them registers them here. mil_linear wraps the batched
# matmul and linear above for the cases they leave out.
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
