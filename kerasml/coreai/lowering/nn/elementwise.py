"""Elementwise NeuralNetwork layers: the rank-5 merges (add, multiply with `alpha`, average, max,
min), `scale` and `bias`, `unary` (its eight functions after scale * x + shift), the rank-N
broadcasting arithmetic, comparisons and logical operators (1.0 / 0.0 as Core ML gives), `clip`,
`whereBroadcastable` and the rank-N unary math layers.

Operands of different ranks broadcast per prediction, right-aligned (the runtime's `align_ranks`),
which is how `graph.elementwise` aligns them; n-ary layers fold left to right as the runtime does.
"""

from __future__ import annotations

import functools

import numpy as np

from kerasml.coreai.lowering.graph import Tensor
from kerasml.coreai.lowering.nn import arith
from kerasml.coreai.lowering.nn.arith import add, c, div, fn, maximum, minimum, mul, power, sub
from kerasml.coreai.lowering.nn.layer import Layer
from kerasml.coreai.lowering.registry import NN_LOWERINGS, lowers


def _folded(g, op, operands: list):
    return functools.reduce(lambda a, b: op(g, a, b), operands)


def _merge(op, with_alpha: bool):
    def lower(layer: Layer) -> list:
        g = layer.g
        if len(layer.inputs) == 1:
            if not with_alpha:
                return [layer.x()]
            return [op(g, layer.x(), c(layer.p.alpha))]
        return [_folded(g, op, list(layer.inputs))]
    return lower


lowers(NN_LOWERINGS, "add", params="alpha")(_merge(add, True))
lowers(NN_LOWERINGS, "multiply", params="alpha")(_merge(mul, True))
lowers(NN_LOWERINGS, "max", params="")(_merge(maximum, False))
lowers(NN_LOWERINGS, "min", params="")(_merge(minimum, False))


@lowers(NN_LOWERINGS, "average", params="")
def average(layer: Layer) -> list:
    g = layer.g
    return [div(g, _folded(g, add, list(layer.inputs)), c(len(layer.inputs)))]


def _broadcast_shape(shape) -> tuple[int, ...]:
    """A scale/bias parameter shape, (1,), (C,), (1, H, W) or (C, H, W), as (C, H, W)."""
    shape = tuple(int(s) for s in shape) or (1,)
    if len(shape) == 1:
        return (shape[0], 1, 1)
    if len(shape) == 3:
        return shape
    raise ValueError(f"parameter shape {shape} must have 1 or 3 values")


@lowers(NN_LOWERINGS, "scale", params="shapeScale scale hasBias shapeBias bias")
def scale(layer: Layer) -> list:
    g, p = layer.g, layer.p
    y = mul(g, layer.x(), layer.weights(p.scale, _broadcast_shape(p.shapeScale), "scale"))
    if p.hasBias:
        y = add(g, y, layer.weights(p.bias, _broadcast_shape(p.shapeBias), "bias"))
    return [y]


@lowers(NN_LOWERINGS, "bias", params="shape bias")
def bias(layer: Layer) -> list:
    p = layer.p
    return [add(layer.g, layer.x(), layer.weights(p.bias, _broadcast_shape(p.shape), "bias"))]


# UnaryFunctionLayerParams.Operation on y = scale * x + shift; eps is 1e-6 when unset
_UNARY = {
    0: lambda g, y, p, eps: fn(g, "sqrt", y),
    1: lambda g, y, p, eps: div(g, c(1), fn(g, "sqrt", add(g, y, eps))),
    2: lambda g, y, p, eps: div(g, c(1), add(g, y, eps)),
    3: lambda g, y, p, eps: power(g, y, c(p.alpha)),
    4: lambda g, y, p, eps: fn(g, "exp", y),
    5: lambda g, y, p, eps: fn(g, "log", add(g, y, eps)),
    6: lambda g, y, p, eps: fn(g, "abs_", y),
    7: lambda g, y, p, eps: maximum(g, y, c(p.alpha)),
}


@lowers(NN_LOWERINGS, "unary", params="type alpha epsilon shift scale")
def unary(layer: Layer) -> list:
    g, p = layer.g, layer.p
    formula = _UNARY.get(p.type)
    if formula is None:
        raise layer.unsupported(f"unary function {p.type}")
    y = layer.x()
    scale_, shift = np.float32(p.scale or 1.0), np.float32(p.shift)
    if scale_ != 1:
        y = mul(g, y, c(scale_))
    if p.shift:
        y = add(g, y, c(shift))
    return [formula(g, y, p, c(p.epsilon or 1e-6))]


def _broadcastable(op):
    def lower(layer: Layer) -> list:
        return [_folded(layer.g, op, list(layer.inputs))]
    return lower


def _mod(g, a, b):
    """NumPy's mod (the divisor's sign), as NumPy computes it: Core AI's modulo is C's fmod (the
    dividend's sign), moved by b where it is not 0 and its sign differs from b's."""
    r = arith.binary(g, "modulo", a, b)
    other_sign = arith.binary(g, "xor", arith.greater(g, c(0), b), arith.greater(g, c(0), r), arith.BOOL)
    wrong = arith.binary(g, "and", other_sign, arith.binary(g, "not_equal", r, c(0), arith.BOOL), arith.BOOL)
    return arith.where(g, wrong, add(g, r, b), r)


def _floor(g, x):
    return arith.binary(g, "floor_divide", x, c(1))


for _name, _op in {"addBroadcastable": add, "subtractBroadcastable": sub, "multiplyBroadcastable": mul,
                   "divideBroadcastable": div, "maxBroadcastable": maximum, "minBroadcastable": minimum,
                   "powBroadcastable": power,
                   "modBroadcastable": lambda g, a, b: _mod(g, a, b),
                   "floorDivBroadcastable": lambda g, a, b: arith.binary(g, "floor_divide", a, b)}.items():
    lowers(NN_LOWERINGS, _name, params="")(_broadcastable(_op))


def _compare(kind: str):
    """a op b (or a op alpha with one input) as 1.0 / 0.0; less and less-equal are greater with the
    operands swapped, the -equal forms greater or equal."""
    def lower(layer: Layer) -> list:
        g = layer.g
        a, b = (layer.inputs[0], layer.inputs[1]) if len(layer.inputs) == 2 else (layer.x(), c(layer.p.alpha))
        if kind in ("lessThan", "lessEqual"):
            a, b = b, a
        if kind in ("equal", "notEqual"):
            result = arith.binary(g, "equal" if kind == "equal" else "not_equal", a, b, arith.BOOL)
        else:
            result = arith.greater(g, a, b)
            if kind in ("lessEqual", "greaterEqual"):
                same = arith.binary(g, "equal", a, b, arith.BOOL)
                result = arith.binary(g, "or", result, same, arith.BOOL)
        return [arith.as_float(g, result)]
    return lower


for _name in ("equal", "notEqual", "lessThan", "lessEqual", "greaterThan", "greaterEqual"):
    lowers(NN_LOWERINGS, _name, params="alpha")(_compare(_name))


def _truth(g, x):
    """x != 0, for the logical layers (their inputs are 1.0 / 0.0, or any float)."""
    return arith.binary(g, "not_equal", x, c(0), arith.BOOL)


def _logical(name: str):
    def lower(layer: Layer) -> list:
        g = layer.g
        if name == "not":
            return [arith.as_float(g, arith.binary(g, "equal", layer.x(), c(0), arith.BOOL))]
        a, b = ((_truth(g, v) if isinstance(v, Tensor) else np.asarray(v) != 0) for v in layer.inputs)
        return [arith.as_float(g, arith.binary(g, name, a, b, arith.BOOL))]
    return lower


for _name, _core in (("logicalAnd", "and"), ("logicalOr", "or"), ("logicalXor", "xor"), ("logicalNot", "not")):
    lowers(NN_LOWERINGS, _name, params="")(_logical(_core))


@lowers(NN_LOWERINGS, "clip", params="minVal maxVal")
def clip(layer: Layer) -> list:
    g, p = layer.g, layer.p
    return [minimum(g, maximum(g, layer.x(), c(p.minVal)), c(p.maxVal))]


@lowers(NN_LOWERINGS, "whereBroadcastable", params="")
def where_broadcastable(layer: Layer) -> list:
    g = layer.g
    cond, a, b = layer.inputs
    cond = _truth(g, cond) if isinstance(cond, Tensor) else np.asarray(cond) != 0
    return [arith.where(g, cond, a, b)]


def _sign(g, x):
    positive = arith.as_float(g, arith.greater(g, x, c(0)))
    negative = arith.as_float(g, arith.greater(g, c(0), x))
    return sub(g, positive, negative)


_MATH = {
    "ceil": lambda g, x: mul(g, _floor(g, mul(g, x, c(-1))), c(-1)),
    "floor": _floor,
    "sign": _sign,
    "round": lambda g, x: fn(g, "round_", x),
    "exp2": lambda g, x: power(g, c(2), x),
    "sin": lambda g, x: fn(g, "sin", x),
    "cos": lambda g, x: fn(g, "cos", x),
    "tan": lambda g, x: fn(g, "tan", x),
    "asin": lambda g, x: fn(g, "asin", x),
    "acos": lambda g, x: fn(g, "acos", x),
    "atan": lambda g, x: fn(g, "atan", x),
    "sinh": lambda g, x: fn(g, "sinh", x),
    "cosh": lambda g, x: fn(g, "cosh", x),
    "tanh": lambda g, x: fn(g, "tanh", x),
    "asinh": lambda g, x: fn(g, "asinh", x),
    "acosh": lambda g, x: fn(g, "acosh", x),
    "atanh": lambda g, x: fn(g, "atanh", x),
}


def _math(formula):
    def lower(layer: Layer) -> list:
        return [formula(layer.g, layer.x())]
    return lower


for _name, _formula in _MATH.items():
    lowers(NN_LOWERINGS, _name, params="")(_math(_formula))
