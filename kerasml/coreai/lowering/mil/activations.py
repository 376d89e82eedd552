"""ML Program activations, elementwise unary ops, softmax and cast.

Core AI has relu, sigmoid, tanh, silu, gelu, erf, exp, log, sqrt, rsqrt, abs, round and the
trigonometric functions; the rest are composed from them, each as coremltools' MIL definition
states it (ops/defs/iOS15/activation.py, elementwise_unary.py): rsqrt/log/inverse add their
epsilon, leaky_relu keeps x >= 0, thresholded_relu keeps x == alpha, softplus is computed without
overflow as max(x, 0) + log(1 + exp(-|x|)).
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import Tensor
from kerasml.coreai.lowering.mil.op import Op
from kerasml.coreai.lowering.registry import MIL_LOWERINGS, lowers

_NATIVE = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "exp": "exp", "sqrt": "sqrt", "abs": "abs_",
           "erf": "erf", "silu": "silu", "sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin",
           "acos": "acos", "atan": "atan", "sinh": "sinh", "cosh": "cosh", "atanh": "atanh",
           "logical_not": "not_"}


def _native(name: str):
    def lower(op: Op) -> list:
        return [op.g.unary(getattr(op.g.A, name), op.batched("x"), op.dtype)]
    return lower


for _mil, _core in _NATIVE.items():
    lowers(MIL_LOWERINGS, _mil, params="x")(_native(_core))


class _Math:
    """Arithmetic on one op's Tensors with constants in its own dtype, written as formulas."""

    def __init__(self, op: Op):
        self.op, self.g = op, op.g

    def c(self, value) -> np.ndarray:
        return np.asarray(value, dtype=self.op.dtype)

    def binary(self, name: str, a, b) -> Tensor:
        return self.g.elementwise(getattr(self.g.A, name), [a, b], self.op.shape, self.op.dtype)

    def add(self, a, b): return self.binary("broadcasting_add", a, b)
    def sub(self, a, b): return self.binary("broadcasting_sub", a, b)
    def mul(self, a, b): return self.binary("broadcasting_mul", a, b)
    def div(self, a, b): return self.binary("broadcasting_divide", a, b)
    def max(self, a, b): return self.binary("broadcasting_maximum", a, b)
    def min(self, a, b): return self.binary("broadcasting_minimum", a, b)

    def where(self, cond, a, b) -> Tensor:
        return self.g.elementwise(self.g.A.broadcasting_where, [cond, a, b], self.op.shape, self.op.dtype)

    def greater(self, a, b) -> Tensor:
        return self.g.elementwise(self.g.A.broadcasting_greater, [a, b], self.op.shape, np.dtype(bool))

    def at_least(self, a, b) -> Tensor:
        """a >= b."""
        return self.g.elementwise(self.g.A.broadcasting_or, [self.greater(a, b), self.g.elementwise(
            self.g.A.broadcasting_equal, [a, b], self.op.shape, np.dtype(bool))], self.op.shape, np.dtype(bool))

    def fn(self, name: str, a: Tensor) -> Tensor:
        return self.g.unary(getattr(self.g.A, name), a)

    def floor(self, a: Tensor) -> Tensor:
        return self.binary("broadcasting_floor_divide", a, self.c(1))


def _scalar(op: Op, name: str, default=None) -> float:
    return float(op.scalar(name) if default is None else op.scalar(name, default))


_COMPOSED = {
    "relu6": lambda m, x, op: m.min(m.max(x, m.c(0)), m.c(6)),
    "clip": lambda m, x, op: m.min(m.max(x, m.c(_scalar(op, "alpha"))), m.c(_scalar(op, "beta"))),
    "square": lambda m, x, op: m.mul(x, x),
    "rsqrt": lambda m, x, op: m.fn("rsqrt", m.add(x, m.c(_scalar(op, "epsilon", 1e-12)))),
    "log": lambda m, x, op: m.fn("log", m.add(x, m.c(_scalar(op, "epsilon", 1e-45)))),
    "inverse": lambda m, x, op: m.div(m.c(1), m.add(x, m.c(_scalar(op, "epsilon", 1e-4)))),
    "softsign": lambda m, x, op: m.div(x, m.add(m.fn("abs_", x), m.c(1))),
    "softplus": lambda m, x, op: m.add(m.max(x, m.c(0)), m.fn("log", m.add(m.fn("exp", m.mul(m.fn("abs_", x), m.c(-1))), m.c(1)))),
    "leaky_relu": lambda m, x, op: m.where(m.at_least(x, m.c(0)), x, m.mul(x, m.c(_scalar(op, "alpha", 0.01)))),
    "elu": lambda m, x, op: m.where(m.greater(x, m.c(0)), x, m.mul(m.c(_scalar(op, "alpha", 1.0)),
                                                                    m.sub(m.fn("exp", m.min(x, m.c(0))), m.c(1)))),
    "linear_activation": lambda m, x, op: m.add(m.mul(x, m.c(_scalar(op, "alpha"))), m.c(_scalar(op, "beta", 0.0))),
    "sigmoid_hard": lambda m, x, op: m.min(m.max(m.add(m.mul(x, m.c(_scalar(op, "alpha", 0.2))),
                                                       m.c(_scalar(op, "beta", 0.5))), m.c(0)), m.c(1)),
    "scaled_tanh": lambda m, x, op: m.mul(m.c(_scalar(op, "alpha", 1.0)), m.fn("tanh", m.mul(x, m.c(_scalar(op, "beta", 1.0))))),
    "thresholded_relu": lambda m, x, op: m.where(m.at_least(x, m.c(_scalar(op, "alpha", 1.0))), x, m.c(0)),
    "clamped_relu": lambda m, x, op: m.min(m.where(m.at_least(x, m.c(0)), x, m.mul(x, m.c(_scalar(op, "alpha")))),
                                           m.c(_scalar(op, "beta"))),
    "threshold": lambda m, x, op: m.max(x, m.c(_scalar(op, "alpha"))),
    "floor": lambda m, x, op: m.floor(x),
    "ceil": lambda m, x, op: m.mul(m.floor(m.mul(x, m.c(-1))), m.c(-1)),
    "sign": lambda m, x, op: m.sub(m.where(m.greater(x, m.c(0)), m.c(1), m.c(0)),
                                   m.where(m.greater(m.c(0), x), m.c(1), m.c(0))),
    "exp2": lambda m, x, op: m.binary("broadcasting_pow", m.c(2), x),
}

_PARAMS = {"clip": "x alpha beta", "rsqrt": "x epsilon", "log": "x epsilon", "inverse": "x epsilon",
           "leaky_relu": "x alpha", "elu": "x alpha", "linear_activation": "x alpha beta",
           "sigmoid_hard": "x alpha beta", "scaled_tanh": "x alpha beta", "thresholded_relu": "x alpha",
           "clamped_relu": "x alpha beta", "threshold": "x alpha"}


def _composed(formula):
    def lower(op: Op) -> list:
        return [formula(_Math(op), op.batched("x"), op)]
    return lower


for _mil, _formula in _COMPOSED.items():
    lowers(MIL_LOWERINGS, _mil, params=_PARAMS.get(_mil, "x"))(_composed(_formula))


@lowers(MIL_LOWERINGS, "round", params="x")
def round_half_even(op: Op) -> list:
    """MIL rounds half to even (np.round); Core AI's round is checked against that in the tests."""
    return [op.g.unary(op.g.A.round_, op.batched("x"))]


@lowers(MIL_LOWERINGS, "gelu", params="x mode")
def gelu(op: Op) -> list:
    mode = str(op.scalar("mode", "EXACT"))
    x = op.batched("x")
    if mode == "EXACT":
        return [op.g.unary(op.g.A.gelu, x)]
    if mode == "TANH_APPROXIMATION":
        return [op.g.unary(lambda v: op.g.A.gelu(v, approximate="tanh"), x)]
    if mode == "SIGMOID_APPROXIMATION":  # x * sigmoid(1.702 x)
        m = _Math(op)
        return [m.mul(x, m.fn("sigmoid", m.mul(x, m.c(1.702))))]
    raise op.unsupported(f"gelu mode '{mode}'")


def _per_channel(op: Op, param: str) -> np.ndarray:
    """A per-channel constant (axis 1 of each prediction) shaped to broadcast against x."""
    value = np.asarray(op.const(param), op.dtype).reshape(-1)
    return value.reshape((1, -1) + (1,) * (len(op.shape) - 2))


@lowers(MIL_LOWERINGS, "prelu", params="x alpha")
def prelu(op: Op) -> list:
    m, x = _Math(op), op.batched("x")
    return [m.where(m.greater(x, m.c(0)), x, m.mul(x, _per_channel(op, "alpha")))]


@lowers(MIL_LOWERINGS, "softplus_parametric", params="x alpha beta")
def softplus_parametric(op: Op) -> list:
    m, x = _Math(op), op.batched("x")
    bx = m.mul(x, _per_channel(op, "beta"))
    soft = m.add(m.max(bx, m.c(0)), m.fn("log", m.add(m.fn("exp", m.mul(m.fn("abs_", bx), m.c(-1))), m.c(1))))
    return [m.mul(soft, _per_channel(op, "alpha"))]


@lowers(MIL_LOWERINGS, "softmax", params="x axis")
def softmax(op: Op) -> list:
    x, (axis,) = op.g.on_axes(op.batched("x"), [op.scalar("axis", -1)])
    return [op.g.unary(lambda v: op.g.A.softmax(v, int(axis)), x)]


@lowers(MIL_LOWERINGS, "cast", params="x dtype")
def cast(op: Op) -> list:
    x = op.batched("x")
    if x.dtype == op.dtype:
        return [x]
    return [op.g.unary(lambda v: op.g.A.cast(v, op.dtype.type), x, op.dtype)]


@lowers(MIL_LOWERINGS, "identity", params="x")
def identity(op: Op) -> list:
    return [op.tensor("x")]
