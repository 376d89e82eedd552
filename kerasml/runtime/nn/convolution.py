"""NeuralNetwork convolution layers: `convolution` (with its deconvolution form) and `convolution3d`.

Each `compile_<type>(layer, name)` reads and checks the layer's parameters once, at load time, and
returns `run(inputs) -> outputs`. Blobs are float32 arrays with a leading axis of independent
predictions, then the per-prediction Core ML shape whose last three axes are (C, H, W), or four
(C, D, H, W) for 3-D layers; 2-D work goes to `kernels.conv2d` / `conv_transpose2d`, 3-D to direct
sliding windows written for the small volumes those layers see.
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.nn import weights
from kerasml.runtime.nn.common import (Run, as_images, as_volumes, border, pair, unsupported, volume_pads,
                                       volume_windows)
from kerasml.runtime.registry import NN_LAYERS


def _deconvolution_crop(p, name: str, full: tuple[int, int], out: tuple[int, int]) -> tuple[int, int, int, int]:
    """Rows and columns cut from each edge of a deconvolution's full result to leave `out`."""
    if p.WhichOneof("ConvolutionPaddingType") == "same":
        crops = []
        for total in (full[0] - out[0], full[1] - out[1]):
            small = max(total, 0) // 2
            crops += [max(total, 0) - small, small] if p.same.asymmetryMode == 1 else [small, max(total, 0) - small]
        return tuple(crops)
    return border(p.valid.paddingAmounts, name)


def _compile_deconvolution(p, name: str, kernel: tuple[int, int], stride: tuple[int, int], groups: int) -> Run:
    if pair(p.dilationFactor, 1) != (1, 1):  # the spec says Core ML ignores it: refuse rather than guess
        raise unsupported(name, "convolution", "a dilation factor on a deconvolution")
    kh, kw = kernel
    w = weights.decode(
        p.weights, (p.kernelChannels, p.outputChannels // groups, kh, kw), f"layer '{name}' weights"
    )
    bias = weights.vector(p.bias, p.outputChannels, f"layer '{name}' bias") if p.hasBias else None
    fixed_out = pair(p.outputShape, 0) if list(p.outputShape) else None

    def run(inputs):
        x, lead = as_images(inputs[0])
        h, wd = x.shape[2:]
        full = ((h - 1) * stride[0] + kh, (wd - 1) * stride[1] + kw)
        if fixed_out is not None:
            out = fixed_out
        elif p.WhichOneof("ConvolutionPaddingType") == "same":
            out = (h * stride[0], wd * stride[1])
        else:
            top, bottom, left, right = border(p.valid.paddingAmounts, name)
            out = (full[0] - top - bottom, full[1] - left - right)
        crop = _deconvolution_crop(p, name, full, out)
        y = kernels.conv_transpose2d(x, w, bias, stride=stride, crop=crop, out_size=out, groups=groups)
        return [y.reshape(lead + y.shape[1:])]

    return run


@NN_LAYERS.register("convolution")
def compile_convolution(layer, name: str) -> Run:
    p = layer.convolution
    kh, kw = pair(p.kernelSize, 3)
    stride, dilation, groups = pair(p.stride, 1), pair(p.dilationFactor, 1), p.nGroups or 1
    if p.isDeconvolution:
        if len(layer.input) != 1:
            raise unsupported(name, "convolution", "deconvolution weights given as a second input")
        return _compile_deconvolution(p, name, (kh, kw), stride, groups)
    shape = (p.outputChannels, p.kernelChannels, kh, kw)
    dynamic = len(layer.input) == 2  # spec 4+: the weights arrive as a second input
    w = None if dynamic else weights.decode(p.weights, shape, f"layer '{name}' weights")
    bias = weights.vector(p.bias, p.outputChannels, f"layer '{name}' bias") if p.hasBias else None
    padding = p.WhichOneof("ConvolutionPaddingType")
    fixed = border(p.valid.paddingAmounts, name) if padding == "valid" else None
    top_heavy = padding == "same" and p.same.asymmetryMode == 1
    ws = kernels.Workspace()

    def run(inputs):
        x, lead = as_images(inputs[0])
        kernel = w
        if dynamic:
            kernel = inputs[1].reshape(inputs[1].shape[-4:]) if inputs[1].shape[0] == 1 else None
            if kernel is None or kernel.shape != shape:
                raise ValueError(f"weights input of shape {inputs[1].shape[1:]}, expected {shape}")
            kernel = np.ascontiguousarray(kernel, np.float32)
        if fixed is None:
            pads = kernels.same_pads(x.shape[2], kh, stride[0], dilation[0], top_heavy=top_heavy)
            pads += kernels.same_pads(x.shape[3], kw, stride[1], dilation[1], top_heavy=top_heavy)
        else:
            pads = fixed
        y = kernels.conv2d(x, kernel, bias, stride=stride, dilation=dilation, pads=pads, groups=groups, ws=ws)
        return [y.reshape(lead + y.shape[1:])]

    return run


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
        x, lead = as_volumes(inputs[0], "convolution3d")
        if x.shape[1] != p.inputChannels:
            raise ValueError(f"input has {x.shape[1]} channels, the layer expects {p.inputChannels}")
        x = np.pad(x, [(0, 0), (0, 0)] + volume_pads(p, x.shape[2:], kernel, stride, dilation))
        win = volume_windows(x, kernel, stride, dilation)
        y = np.concatenate([
            np.einsum("mcdhwxyz,ocxyz->modhw", win[:, g * cin_g : (g + 1) * cin_g], w[g * cout_g : (g + 1) * cout_g],
                      optimize=True)
            for g in range(groups)
        ], axis=1).astype(np.float32)
        if bias is not None:
            y += bias.reshape(-1, 1, 1, 1)
        return [y.reshape(lead + y.shape[1:])]

    return run
