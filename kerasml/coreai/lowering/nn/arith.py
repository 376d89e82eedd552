"""Arithmetic on Tensors and constants with NumPy's broadcasting of one prediction's shapes, for
the formulas NeuralNetwork layers are written in: each helper works out its result's shape, so a
lowering reads like the runtime's NumPy (`add(g, mul(g, x, a), b)` for `a * x + b`)."""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import Graph, Tensor, i32

F32 = np.dtype(np.float32)
BOOL = np.dtype(bool)


def shape_of(x) -> tuple[int, ...]:
    return x.shape if isinstance(x, Tensor) else np.shape(x)


def c(value) -> np.ndarray:
    """A float32 constant."""
    return np.asarray(value, np.float32)


_NUMPY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "divide": np.divide, "maximum": np.maximum,
          "minimum": np.minimum, "pow": np.power, "modulo": np.fmod, "floor_divide": np.floor_divide,
          "greater": np.greater, "equal": np.equal, "not_equal": np.not_equal, "and": np.logical_and,
          "or": np.logical_or, "xor": np.logical_xor}


def binary(g: Graph, name: str, a, b, dtype=F32):
    """Core AI's broadcasting_<name> of a and b; NumPy's, as a constant, when neither is computed."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        return np.asarray(_NUMPY[name](a, b)).astype(dtype)
    shape = np.broadcast_shapes(shape_of(a), shape_of(b))
    return g.elementwise(getattr(g.A, f"broadcasting_{name}"), [a, b], shape, dtype)


def add(g, a, b): return binary(g, "add", a, b)
def sub(g, a, b): return binary(g, "sub", a, b)
def mul(g, a, b): return binary(g, "mul", a, b)
def div(g, a, b): return binary(g, "divide", a, b)
def maximum(g, a, b): return binary(g, "maximum", a, b)
def minimum(g, a, b): return binary(g, "minimum", a, b)
def power(g, a, b): return binary(g, "pow", a, b)


def greater(g, a, b) -> Tensor:
    return binary(g, "greater", a, b, BOOL)


def where(g, cond, a, b):
    if not any(isinstance(v, Tensor) for v in (cond, a, b)):
        return np.where(cond, a, b).astype(F32)
    shape = np.broadcast_shapes(shape_of(cond), shape_of(a), shape_of(b))
    return g.elementwise(g.A.broadcasting_where, [cond, a, b], shape, F32)


def fn(g: Graph, name: str, x: Tensor) -> Tensor:
    """A Core AI unary function (relu, exp, log, sqrt, rsqrt, abs_, ...) of x."""
    return g.unary(getattr(g.A, name), x)


def as_float(g: Graph, t: Tensor) -> Tensor:
    """A boolean or integer Tensor as float32 (NeuralNetwork blobs are float: true is 1.0)."""
    return t if t.dtype == F32 else g.unary(lambda v: g.A.cast(v, np.float32), t, F32)


def affine(g: Graph, x: Tensor, scale, shift) -> Tensor:
    """scale * x + shift, leaving out a multiply by exactly 1 and an add of exactly 0."""
    if np.any(np.asarray(scale) != 1):
        x = mul(g, x, scale)
    if np.any(np.asarray(shift) != 0):
        x = add(g, x, shift)
    return x


def softplus(g: Graph, x: Tensor) -> Tensor:
    """log(1 + e^x) without overflow: max(x, 0) + log(1 + e^-|x|)."""
    tail = fn(g, "log", add(g, fn(g, "exp", mul(g, fn(g, "abs_", x), c(-1))), c(1)))
    return add(g, maximum(g, x, c(0)), tail)


def reduce(g: Graph, name: str, x: Tensor, axes) -> Tensor:
    """Core AI's reduce_<name> over per-prediction `axes`, the reduced axes kept (size 1)."""
    axes = sorted({a % x.rank for a in np.ravel(axes)})
    kept = tuple(1 if a in axes else d for a, d in enumerate(x.shape))
    t, core = g.on_axes(x, axes)
    return Tensor(getattr(g.A, f"reduce_{name}")(t.value, i32(core)), kept, x.dtype, t.layout)
