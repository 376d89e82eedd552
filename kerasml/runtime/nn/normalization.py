"""NeuralNetwork normalisation layers: `batchnorm` (instance normalisation is its
`instanceNormalization` flag), `mvn`, `l2normalize`, `lrn` and `layerNormalization`. Epsilons sit
where NeuralNetwork.proto puts them; unset (0) epsilons and LRN's k take the spec's defaults."""

from __future__ import annotations

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.nn import weights
from kerasml.runtime.nn.common import Run, channel_axis, unsupported
from kerasml.runtime.registry import NN_LAYERS

_CHW = (-3, -2, -1)


def _needs_rank3(x: np.ndarray, kind: str) -> None:
    if x.ndim < 4:
        raise ValueError(f"{kind} needs an input of rank 3 or more (C, H, W), got shape {x.shape[1:]}")


@NN_LAYERS.register("mvn")
def compile_mvn(layer, name: str) -> Run:
    p = layer.mvn
    axes = _CHW if p.acrossChannels else (-2, -1)
    eps = np.float32(p.epsilon or 1e-6)

    def run(inputs):
        x = inputs[0]
        _needs_rank3(x, "mvn")
        centred = x - x.mean(axis=axes, keepdims=True, dtype=np.float32)
        if not p.normalizeVariance:
            return [centred]
        var = np.mean(centred * centred, axis=axes, keepdims=True, dtype=np.float32)
        return [(centred / np.sqrt(var + eps)).astype(np.float32)]

    return run


@NN_LAYERS.register("l2normalize")
def compile_l2normalize(layer, name: str) -> Run:
    eps = np.float32(layer.l2normalize.epsilon or 1e-6)

    def run(inputs):
        x = inputs[0]
        _needs_rank3(x, "l2normalize")
        return [(x / np.sqrt(np.sum(x * x, axis=_CHW, keepdims=True) + eps)).astype(np.float32)]

    return run


@NN_LAYERS.register("lrn")
def compile_lrn(layer, name: str) -> Run:
    p = layer.lrn
    size = int(p.localSize)
    if size < 1:
        raise ValueError(f"layer '{name}' (lrn): local size {size} must be at least 1")
    alpha, beta, k = np.float32(p.alpha), np.float32(p.beta), np.float32(p.k or 1.0)
    before = (size - 1) // 2  # the window of channel c is [c - before, c - before + size)

    def run(inputs):
        x = inputs[0]
        _needs_rank3(x, "lrn")
        sq = x * x
        c = x.shape[-3]
        padded = np.zeros(x.shape[:-3] + (c + size - 1,) + x.shape[-2:], np.float32)
        padded[..., before : before + c, :, :] = sq
        window = np.cumsum(padded, axis=-3, dtype=np.float64)
        window = np.concatenate([np.zeros_like(window[..., :1, :, :]), window], axis=-3)
        sums = (window[..., size : size + c, :, :] - window[..., :c, :, :]).astype(np.float32)
        return [(x / np.power(k + alpha / size * sums, beta)).astype(np.float32)]

    return run


@NN_LAYERS.register("layerNormalization")
def compile_layerNormalization(layer, name: str) -> Run:
    p = layer.layerNormalization
    shape = tuple(int(d) for d in p.normalizedShape)
    if not shape:
        raise ValueError(f"layer '{name}' (layerNormalization) has no normalized shape")
    gamma = weights.decode(p.gamma, shape, f"layer '{name}' gamma")
    beta = weights.decode(p.beta, shape, f"layer '{name}' beta")
    axes = tuple(range(-len(shape), 0))

    def run(inputs):
        x = inputs[0]
        if x.shape[x.ndim - len(shape) :] != shape or x.ndim - 1 < len(shape):
            raise ValueError(f"input of shape {x.shape[1:]} does not end in the normalized shape {shape}")
        return [kernels.layer_norm(x, axes, gamma, beta, float(p.eps))]

    return run


@NN_LAYERS.register("batchnorm")
def compile_batchnorm(layer, name: str) -> Run:
    p = layer.batchnorm
    c = p.channels
    gamma = weights.vector(p.gamma, c, f"layer '{name}' gamma")
    beta = weights.vector(p.beta, c, f"layer '{name}' beta")
    if p.computeMeanVar:
        if not p.instanceNormalization:
            raise unsupported(name, "batchnorm", "mean and variance computed over the batch")
        eps = np.float32(p.epsilon)

        def run_instance(inputs):
            x = inputs[0]
            mean = x.mean(axis=(-2, -1), keepdims=True)
            var = x.var(axis=(-2, -1), keepdims=True)
            return [gamma[:, None, None] * (x - mean) / np.sqrt(var + eps) + beta[:, None, None]]

        return run_instance
    mean = weights.vector(p.mean, c, f"layer '{name}' mean")
    var = weights.vector(p.variance, c, f"layer '{name}' variance")
    scale = (gamma / np.sqrt(var + np.float32(p.epsilon))).astype(np.float32)
    shift = (beta - mean * scale).astype(np.float32)

    def run(inputs):
        x = inputs[0]
        axis = channel_axis(x)
        if x.shape[axis] != c:
            raise ValueError(f"input has {x.shape[axis]} channels, the layer expects {c}")
        tail = (1,) * (x.ndim - 1 - axis)
        return [x * scale.reshape((c,) + tail) + shift.reshape((c,) + tail)]

    return run
