"""Less common rank-5 NeuralNetwork layers (older Keras converters wrote them): scale, bias, crop,
unary functions and the average/max/min merges. Same contract as `nn_layers`."""

from __future__ import annotations

from typing import Callable

import numpy as np

from kerasml.runtime import weights
from kerasml.runtime.nn_layers import Run, _border, _unsupported


def _broadcast_shape(shape, name: str, what: str) -> tuple[int, ...]:
    """`shape` of a scale/bias parameter: (1,), (C,), (1, H, W) or (C, H, W), as a (C, H, W) shape."""
    shape = tuple(int(s) for s in shape) or (1,)
    if len(shape) == 1:
        return (shape[0], 1, 1)
    if len(shape) == 3:
        return shape
    raise ValueError(f"layer '{name}': {what} shape {shape} must have 1 or 3 values")


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


def compile_bias(layer, name: str) -> Run:
    p = layer.bias
    shape = _broadcast_shape(p.shape, name, "bias")
    bias = weights.decode(p.bias, shape, f"layer '{name}' bias")
    return lambda inputs: [inputs[0] + bias]


def compile_crop(layer, name: str) -> Run:
    if len(layer.input) != 1:
        raise _unsupported(name, "crop", "cropping to a second input's size")
    top, bottom, left, right = _border(layer.crop.cropAmounts, name)

    def run(inputs):
        x = inputs[0]
        h, w = x.shape[-2:]
        if top + bottom >= h or left + right >= w:
            raise ValueError(f"cropping {top + bottom}x{left + right} leaves nothing of {h}x{w}")
        return [x[..., top : h - bottom, left : w - right]]

    return run


_UNARY: dict[int, Callable] = {
    0: lambda x, p: np.sqrt(x),
    1: lambda x, p: 1 / np.sqrt(x + np.float32(p.epsilon)),
    2: lambda x, p: 1 / (x + np.float32(p.epsilon)),
    3: lambda x, p: np.power(x, np.float32(p.alpha)),
    4: lambda x, p: np.exp(x),
    5: lambda x, p: np.log(x + np.float32(p.epsilon)),
    6: lambda x, p: np.abs(x),
    7: lambda x, p: np.maximum(x, np.float32(p.alpha)),
}


def compile_unary(layer, name: str) -> Run:
    p = layer.unary
    fn = _UNARY.get(p.type)
    if fn is None:
        raise _unsupported(name, "unary", f"unary function {p.type}")
    if p.scale == 0:  # unset: coremltools always writes it, and what Core ML makes of 0 is unclear
        raise _unsupported(name, "unary", "an unset (zero) input scale")
    scale, shift = np.float32(p.scale), np.float32(p.shift)
    return lambda inputs: [fn(scale * inputs[0] + shift, p).astype(np.float32, copy=False)]


def _merge(fn) -> Callable[..., Run]:
    def compile_(layer, name: str) -> Run:
        return lambda inputs: [fn(inputs)]

    return compile_


LAYERS_MORE: dict[str, Callable[..., Run]] = {
    "scale": compile_scale,
    "bias": compile_bias,
    "crop": compile_crop,
    "unary": compile_unary,
    "average": _merge(lambda xs: sum(xs[1:], xs[0]) / np.float32(len(xs))),
    "max": _merge(lambda xs: np.maximum.reduce(np.broadcast_arrays(*xs))),
    "min": _merge(lambda xs: np.minimum.reduce(np.broadcast_arrays(*xs))),
}
