"""Elementwise NeuralNetwork layers: rank-5 add, multiply, scale, bias, unary functions and the
average/max/min merges (older Keras converters wrote them), and the rank-N (specification 4+) unary
math, broadcasting arithmetic, comparisons, logical operators, clip and where. Same contract as the
other layer modules (`common`); comparisons and logical operators return 1.0 / 0.0 as Core ML does."""

from __future__ import annotations

from typing import Callable

import numpy as np

from kerasml.runtime.nn import weights
from kerasml.runtime.nn.common import Run, align_ranks, unsupported
from kerasml.runtime.registry import NN_LAYERS


def _broadcast_shape(shape, name: str, what: str) -> tuple[int, ...]:
    """`shape` of a scale/bias parameter: (1,), (C,), (1, H, W) or (C, H, W), as a (C, H, W) shape."""
    shape = tuple(int(s) for s in shape) or (1,)
    if len(shape) == 1:
        return (shape[0], 1, 1)
    if len(shape) == 3:
        return shape
    raise ValueError(f"layer '{name}': {what} shape {shape} must have 1 or 3 values")


@NN_LAYERS.register("scale")
def compile_scale(layer, name: str) -> Run:
    p = layer.scale
    shape = _broadcast_shape(p.shapeScale, name, "scale")
    scale = weights.decode(p.scale, shape, f"layer '{name}' scale")
    bias = None
    if p.hasBias:
        bshape = _broadcast_shape(p.shapeBias, name, "bias")
        bias = weights.decode(p.bias, bshape, f"layer '{name}' bias")

    def run(inputs):
        y = inputs[0] * scale
        return [y + bias if bias is not None else y]

    return run


@NN_LAYERS.register("bias")
def compile_bias(layer, name: str) -> Run:
    p = layer.bias
    shape = _broadcast_shape(p.shape, name, "bias")
    bias = weights.decode(p.bias, shape, f"layer '{name}' bias")
    return lambda inputs: [inputs[0] + bias]


# UnaryFunctionLayerParams.Operation; `eps` is the layer's epsilon (1e-6 when unset or 0).
_UNARY: dict[int, Callable] = {
    0: lambda x, p, eps: np.sqrt(x),
    1: lambda x, p, eps: 1 / np.sqrt(x + eps),
    2: lambda x, p, eps: 1 / (x + eps),
    3: lambda x, p, eps: np.power(x, np.float32(p.alpha)),
    4: lambda x, p, eps: np.exp(x),
    5: lambda x, p, eps: np.log(x + eps),  # MIL's log(x, epsilon) lowers to this layer
    6: lambda x, p, eps: np.abs(x),
    7: lambda x, p, eps: np.maximum(x, np.float32(p.alpha)),
}


@NN_LAYERS.register("unary")
def compile_unary(layer, name: str) -> Run:
    p = layer.unary
    fn = _UNARY.get(p.type)
    if fn is None:
        raise unsupported(name, "unary", f"unary function {p.type}")
    # The spec: scale "defaults to 1.0 if not set or set to 0", epsilon to 1e-6 likewise
    scale, shift, eps = np.float32(p.scale or 1.0), np.float32(p.shift), np.float32(p.epsilon or 1e-6)
    run = lambda inputs: [np.asarray(fn(scale * inputs[0] + shift, p, eps), np.float32)]  # noqa: E731
    if p.type == 7:  # THRESHOLD (ReLU6's max(-x, -6)) can run in place after a convolution
        alpha = np.float32(p.alpha)
        run.in_place = lambda x: np.maximum(np.add(np.multiply(x, scale, out=x), shift, out=x), alpha, out=x)
    return run


def _merge(fn) -> Callable[..., Run]:
    def compile_(layer, name: str) -> Run:
        return lambda inputs: [fn(inputs)]

    return compile_


def _unary(fn) -> Callable[..., Run]:
    return lambda layer, name: lambda inputs: [np.asarray(fn(inputs[0]), np.float32)]


def _broadcastable(op) -> Callable[..., Run]:
    """A binary (or n-ary, folded left to right) operator with NumPy broadcasting."""

    def compile_(layer, name: str) -> Run:
        def run(inputs):
            arrays = align_ranks(list(inputs))
            out = arrays[0]
            for x in arrays[1:]:
                out = op(out, x)
            return [np.asarray(out, np.float32)]

        return run

    return compile_


def _compare(op) -> Callable[..., Run]:
    """x1 op x2, or x1 op alpha with one input; 1.0 where true, 0.0 where not."""

    def compile_(layer, name: str) -> Run:
        alpha = np.float32(getattr(layer, layer.WhichOneof("layer")).alpha)

        def run(inputs):
            a, b = align_ranks(list(inputs)) if len(inputs) == 2 else (inputs[0], alpha)
            return [op(a, b).astype(np.float32)]

        return run

    return compile_


def _logical(op, arity: int) -> Callable[..., Run]:
    def compile_(layer, name: str) -> Run:
        if len(layer.input) != arity:
            raise ValueError(f"layer '{name}' has {len(layer.input)} inputs, expected {arity}")
        return lambda inputs: [op(*(a != 0 for a in align_ranks(list(inputs)))).astype(np.float32)]

    return compile_


@NN_LAYERS.register("clip")
def compile_clip(layer, name: str) -> Run:
    lo, hi = np.float32(layer.clip.minVal), np.float32(layer.clip.maxVal)
    return lambda inputs: [np.minimum(np.maximum(inputs[0], lo), hi)]


@NN_LAYERS.register("whereBroadcastable")
def compile_whereBroadcastable(layer, name: str) -> Run:
    def run(inputs):
        cond, x, y = align_ranks(list(inputs))
        return [np.where(cond != 0, x, y).astype(np.float32)]

    return run


def _safe_divide(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):  # x / 0 is inf or nan, as IEEE says
        return np.divide(a, b)


NN_LAYERS.add("average", _merge(lambda xs: sum(xs[1:], xs[0]) / np.float32(len(xs))))
NN_LAYERS.add("max", _merge(lambda xs: np.maximum.reduce(np.broadcast_arrays(*xs))))
NN_LAYERS.add("min", _merge(lambda xs: np.minimum.reduce(np.broadcast_arrays(*xs))))
NN_LAYERS.add("ceil", _unary(np.ceil))
NN_LAYERS.add("floor", _unary(np.floor))
NN_LAYERS.add("sign", _unary(np.sign))
NN_LAYERS.add("round", _unary(np.round))  # halves to even: Core ML documents round(0.5) = 0
NN_LAYERS.add("exp2", _unary(np.exp2))
NN_LAYERS.add("sin", _unary(np.sin))
NN_LAYERS.add("cos", _unary(np.cos))
NN_LAYERS.add("tan", _unary(np.tan))
NN_LAYERS.add("asin", _unary(np.arcsin))
NN_LAYERS.add("acos", _unary(np.arccos))
NN_LAYERS.add("atan", _unary(np.arctan))
NN_LAYERS.add("sinh", _unary(np.sinh))
NN_LAYERS.add("cosh", _unary(np.cosh))
NN_LAYERS.add("tanh", _unary(np.tanh))
NN_LAYERS.add("asinh", _unary(np.arcsinh))
NN_LAYERS.add("acosh", _unary(np.arccosh))
NN_LAYERS.add("atanh", _unary(np.arctanh))
NN_LAYERS.add("addBroadcastable", _broadcastable(np.add))
NN_LAYERS.add("subtractBroadcastable", _broadcastable(np.subtract))
NN_LAYERS.add("multiplyBroadcastable", _broadcastable(np.multiply))
NN_LAYERS.add("divideBroadcastable", _broadcastable(_safe_divide))
NN_LAYERS.add("maxBroadcastable", _broadcastable(np.maximum))
NN_LAYERS.add("minBroadcastable", _broadcastable(np.minimum))
NN_LAYERS.add("powBroadcastable", _broadcastable(np.power))
NN_LAYERS.add("modBroadcastable", _broadcastable(np.mod))  # the sign of the divisor, as MIL's mod
NN_LAYERS.add("floorDivBroadcastable", _broadcastable(np.floor_divide))
NN_LAYERS.add("equal", _compare(np.equal))
NN_LAYERS.add("notEqual", _compare(np.not_equal))
NN_LAYERS.add("lessThan", _compare(np.less))
NN_LAYERS.add("lessEqual", _compare(np.less_equal))
NN_LAYERS.add("greaterThan", _compare(np.greater))
NN_LAYERS.add("greaterEqual", _compare(np.greater_equal))
NN_LAYERS.add("logicalAnd", _logical(np.logical_and, 2))
NN_LAYERS.add("logicalOr", _logical(np.logical_or, 2))
NN_LAYERS.add("logicalXor", _logical(np.logical_xor, 2))
NN_LAYERS.add("logicalNot", _logical(np.logical_not, 1))


def _elementwise(layer, name: str, kind: str, op) -> Run:
    alpha = np.float32(getattr(layer, kind).alpha)

    def run(inputs):
        if len(inputs) == 1:
            return [op(inputs[0], alpha)]
        arrays = align_ranks(list(inputs))
        out = arrays[0]
        for x in arrays[1:]:
            out = op(out, x)
        return [out]

    return run


@NN_LAYERS.register("add")
def compile_add(layer, name: str) -> Run:
    return _elementwise(layer, name, "add", np.add)


@NN_LAYERS.register("multiply")
def compile_multiply(layer, name: str) -> Run:
    return _elementwise(layer, name, "multiply", np.multiply)
