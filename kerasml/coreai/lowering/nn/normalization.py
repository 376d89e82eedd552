"""NeuralNetwork normalisation: `batchnorm` (stored statistics, or instance normalisation),
`mvn`, `l2normalize`, `lrn` and `layerNormalization`, with the epsilons where NeuralNetwork.proto
puts them and the runtime's order of operations (Core AI has no normalisation op).

LRN's sum over a window of neighbouring channels is a 1x1 convolution whose (C, C) weights are the
band of ones each output channel adds up.
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import u32
from kerasml.coreai.lowering.nn import arith
from kerasml.coreai.lowering.nn.arith import add, c, div, fn, mul, sub
from kerasml.coreai.lowering.nn.layer import Layer
from kerasml.coreai.lowering.nn.spatial import images
from kerasml.coreai.lowering.registry import NN_LOWERINGS, lowers

_CHW = (-3, -2, -1)


@lowers(NN_LOWERINGS, "batchnorm", params="channels computeMeanVar instanceNormalization epsilon gamma beta "
        "mean variance")
def batchnorm(layer: Layer) -> list:
    g, p, x = layer.g, layer.p, layer.x()
    channels = p.channels
    gamma = layer.vector(p.gamma, channels, "gamma")
    beta = layer.vector(p.beta, channels, "beta")
    if p.computeMeanVar:
        if not p.instanceNormalization:
            raise layer.unsupported("mean and variance computed over the batch")
        centred = sub(g, x, arith.reduce(g, "mean", x, [-2, -1]))
        var = arith.reduce(g, "mean", mul(g, centred, centred), [-2, -1])
        y = div(g, mul(g, centred, gamma.reshape(-1, 1, 1)), fn(g, "sqrt", add(g, var, c(p.epsilon))))
        return [add(g, y, beta.reshape(-1, 1, 1))]
    mean = layer.vector(p.mean, channels, "mean")
    var = layer.vector(p.variance, channels, "variance")
    scale = (gamma / np.sqrt(var + np.float32(p.epsilon))).astype(np.float32)
    shift = (beta - mean * scale).astype(np.float32)
    axis = x.rank - 3 if x.rank >= 3 else x.rank - 1
    if x.shape[axis] != channels:
        raise ValueError(f"input has {x.shape[axis]} channels, the layer expects {channels}")
    tail = (1,) * (x.rank - 1 - axis)
    return [add(g, mul(g, x, scale.reshape((channels, *tail))), shift.reshape((channels, *tail)))]


def _needs_rank3(x) -> None:
    if x.rank < 3:
        raise ValueError(f"needs an input of rank 3 or more (C, H, W), got shape {x.shape}")


@lowers(NN_LOWERINGS, "mvn", params="acrossChannels normalizeVariance epsilon")
def mvn(layer: Layer) -> list:
    g, p, x = layer.g, layer.p, layer.x()
    _needs_rank3(x)
    axes = _CHW if p.acrossChannels else (-2, -1)
    centred = sub(g, x, arith.reduce(g, "mean", x, axes))
    if not p.normalizeVariance:
        return [centred]
    var = arith.reduce(g, "mean", mul(g, centred, centred), axes)
    return [div(g, centred, fn(g, "sqrt", add(g, var, c(p.epsilon or 1e-6))))]


@lowers(NN_LOWERINGS, "l2normalize", params="epsilon")
def l2normalize(layer: Layer) -> list:
    g, x = layer.g, layer.x()
    _needs_rank3(x)
    total = arith.reduce(g, "sum", mul(g, x, x), _CHW)
    return [div(g, x, fn(g, "sqrt", add(g, total, c(layer.p.epsilon or 1e-6))))]


@lowers(NN_LOWERINGS, "lrn", params="alpha beta localSize k")
def lrn(layer: Layer) -> list:
    """x / (k + alpha / size * sum of x^2 over channels [c - (size - 1) // 2, ... + size))^beta."""
    g, p, x = layer.g, layer.p, layer.x()
    _needs_rank3(x)
    size = int(p.localSize)
    if size < 1:
        raise ValueError(f"local size {size} must be at least 1")
    channels = x.shape[-3]
    before = (size - 1) // 2
    band = np.zeros((channels, channels, 1, 1), np.float32)
    for out in range(channels):
        band[out, max(out - before, 0):min(out - before + size, channels)] = 1
    value, back = images(g, mul(g, x, x))
    sums = back(g.A.conv2d(value, band, u32([1, 1]), u32([1, 1]), np.uint32(1)), x.shape[-3:])
    base = add(g, mul(g, sums, c(np.float32(p.alpha) / size)), c(p.k or 1.0))
    return [div(g, x, arith.power(g, base, c(p.beta)))]


@lowers(NN_LOWERINGS, "layerNormalization", params="normalizedShape eps gamma beta")
def layer_normalization(layer: Layer) -> list:
    g, p, x = layer.g, layer.p, layer.x()
    shape = tuple(int(d) for d in p.normalizedShape)
    if not shape or x.shape[x.rank - len(shape):] != shape or x.rank < len(shape):
        raise ValueError(f"input of shape {x.shape} does not end in the normalized shape {shape}")
    gamma = layer.weights(p.gamma, shape, "gamma")
    beta = layer.weights(p.beta, shape, "beta")
    axes = list(range(-len(shape), 0))
    centred = sub(g, x, arith.reduce(g, "mean", x, axes))
    var = arith.reduce(g, "mean", mul(g, centred, centred), axes)
    y = div(g, centred, fn(g, "sqrt", add(g, var, c(p.eps))))
    return [add(g, mul(g, y, gamma), beta)]
