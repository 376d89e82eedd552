"""NeuralNetwork 3-D layers (specification 5+): `convolution3d`, `pooling3d`, `globalPooling3d`.
Per prediction the input is [Batch, C, D, H, W]; padding is CUSTOM (the six amounts), VALID or SAME
(output ceil(in / stride), the odd padding after: back, bottom, right). Direct sliding-window
NumPy, written for the small volumes these layers see, not for speed."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kerasml.runtime.nn import weights
from kerasml.runtime.nn.common import Run, unsupported
from kerasml.runtime.registry import NN_LAYERS


def _volumes(x: np.ndarray, kind: str) -> tuple[np.ndarray, tuple[int, ...]]:
    if x.ndim < 5:
        raise ValueError(f"{kind} needs [Batch, C, D, H, W] inputs, got shape {x.shape[1:]}")
    return x.reshape((-1,) + x.shape[-4:]), x.shape[:-4]


def _pads(p, spatial, kernel, stride, dilation=(1, 1, 1)) -> list[tuple[int, int]]:
    """(before, after) padding of D, H, W for a CUSTOM (0), VALID (1) or SAME (2) padding type."""
    if p.paddingType == 0:
        return [(p.customPaddingFront, p.customPaddingBack), (p.customPaddingTop, p.customPaddingBottom),
                (p.customPaddingLeft, p.customPaddingRight)]
    if p.paddingType == 1:
        return [(0, 0)] * 3
    pads = []
    for size, k, s, d in zip(spatial, kernel, stride, dilation):
        total = max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _windows(x: np.ndarray, kernel, stride, dilation) -> np.ndarray:
    """(M, C, oD, oH, oW, kD, kH, kW) windows of an already padded (M, C, D, H, W) volume."""
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(e > n for e, n in zip(span, x.shape[2:])):
        raise ValueError(f"a {kernel} window does not fit a {x.shape[2:]} volume")
    win = sliding_window_view(x, span, axis=(2, 3, 4))
    return win[:, :, :: stride[0], :: stride[1], :: stride[2], :: dilation[0], :: dilation[1], :: dilation[2]]


@NN_LAYERS.register("convolution3d")
def compile_convolution3d(layer, name: str) -> Run:
    p = layer.convolution3d
    if p.isDeconvolution:
        raise unsupported(name, "convolution3d", "3-D deconvolution")
    if len(layer.input) != 1:
        raise unsupported(name, "convolution3d", "weights given as a second input")
    groups = p.nGroups or 1
    kernel = (p.kernelDepth, p.kernelHeight, p.kernelWidth)
    stride = (p.strideDepth or 1, p.strideHeight or 1, p.strideWidth or 1)
    dilation = (p.dilationDepth or 1, p.dilationHeight or 1, p.dilationWidth or 1)
    cin_g = p.inputChannels // groups
    w = weights.decode(p.weights, (p.outputChannels, cin_g) + kernel, f"layer '{name}' weights")
    bias = weights.vector(p.bias, p.outputChannels, f"layer '{name}' bias") if p.hasBias else None
    cout_g = p.outputChannels // groups

    def run(inputs):
        x, lead = _volumes(inputs[0], "convolution3d")
        if x.shape[1] != p.inputChannels:
            raise ValueError(f"input has {x.shape[1]} channels, the layer expects {p.inputChannels}")
        x = np.pad(x, [(0, 0), (0, 0)] + _pads(p, x.shape[2:], kernel, stride, dilation))
        win = _windows(x, kernel, stride, dilation)
        y = np.concatenate([
            np.einsum("mcdhwxyz,ocxyz->modhw", win[:, g * cin_g : (g + 1) * cin_g], w[g * cout_g : (g + 1) * cout_g],
                      optimize=True)
            for g in range(groups)
        ], axis=1).astype(np.float32)
        if bias is not None:
            y += bias.reshape(-1, 1, 1, 1)
        return [y.reshape(lead + y.shape[1:])]

    return run


@NN_LAYERS.register("pooling3d")
def compile_pooling3d(layer, name: str) -> Run:
    p = layer.pooling3d
    if p.type not in (0, 1):
        raise unsupported(name, "pooling3d", f"pooling type {p.type}")
    kernel = (p.kernelDepth, p.kernelHeight, p.kernelWidth)
    stride = (p.strideDepth or 1, p.strideHeight or 1, p.strideWidth or 1)

    def run(inputs):
        x, lead = _volumes(inputs[0], "pooling3d")
        pads = [(0, 0), (0, 0)] + _pads(p, x.shape[2:], kernel, stride)
        if p.type == 0:
            y = _windows(np.pad(x, pads, constant_values=-np.inf), kernel, stride, (1, 1, 1)).max(axis=(-3, -2, -1))
        else:
            sums = _windows(np.pad(x, pads), kernel, stride, (1, 1, 1)).sum(axis=(-3, -2, -1), dtype=np.float32)
            if p.countExcludePadding:  # divide by the real (unpadded) cells of each window
                ones = np.pad(np.ones((1, 1) + x.shape[2:], np.float32), pads)
                counts = _windows(ones, kernel, stride, (1, 1, 1)).sum(axis=(-3, -2, -1))
            else:
                counts = np.float32(np.prod(kernel))
            y = sums / np.maximum(counts, 1)
        y = y.astype(np.float32)
        return [y.reshape(lead + y.shape[1:])]

    return run


@NN_LAYERS.register("globalPooling3d")
def compile_globalPooling3d(layer, name: str) -> Run:
    kind = layer.globalPooling3d.type
    if kind not in (0, 1):
        raise unsupported(name, "globalPooling3d", f"pooling type {kind}")

    def run(inputs):
        x = inputs[0]
        _volumes(x, "globalPooling3d")
        fn = np.max if kind == 0 else np.mean
        return [fn(x, axis=(-3, -2, -1), keepdims=True).astype(np.float32)]

    return run
