"""NeuralNetwork `convolution` (groups, dilation, valid padding amounts or same padding either way
round, weights as a second constant input, deconvolution) and `pooling` (max, average, L2; global;
valid, same and includeLastPixel padding; average with or without the padding counted).

Core AI's conv2d has no padding: a `pad` op goes first. A deconvolution is written as what it
is: the input spread out by the stride with zeros between, padded by the kernel's reach, and an
ordinary convolution with the kernel flipped; then the runtime's crop (zeros where the crop runs
past the full result). Average pooling is a sum pool divided by how many pixels each window
counts (a constant map, computed once here by the runtime's rule); max pooling pads with -inf.
Windows that run past the padded input (includeLastPixel's ceil rounding) read padding there.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kerasml.coreai.lowering.graph import i32, u32
from kerasml.coreai.lowering.nn import arith
from kerasml.coreai.lowering.nn.layer import Layer
from kerasml.coreai.lowering.nn.spatial import add_channel_bias, crop2d, images, pad2d
from kerasml.coreai.lowering.registry import NN_LOWERINGS, lowers
from kerasml.runtime import numerics
from kerasml.runtime.nn.common import border, pair


@lowers(NN_LOWERINGS, "convolution", params="outputChannels kernelChannels nGroups kernelSize stride dilationFactor "
        "valid same isDeconvolution hasBias weights bias outputShape")
def convolution(layer: Layer) -> list:
    g, p, x = layer.g, layer.p, layer.x()
    kernel, stride, dilation = pair(p.kernelSize, 3), pair(p.stride, 1), pair(p.dilationFactor, 1)
    groups = p.nGroups or 1
    bias = layer.vector(p.bias, p.outputChannels, "bias") if p.hasBias else None
    value, back = images(g, x)
    if p.isDeconvolution:
        value = _deconvolution(layer, value, x.shape[-3:], kernel, stride, groups)
        return [back(add_channel_bias(g, value, bias), layer.shape[-3:])]
    shape = (p.outputChannels, p.kernelChannels, *kernel)
    if len(layer.inputs) == 2:          # spec 4+: the weights as a second input (a constant here)
        w = layer.const(1)
        w = w.reshape(w.shape[-4:]) if w.ndim >= 4 else w
        if w.shape != shape:
            raise ValueError(f"weights input of shape {w.shape}, expected {shape}")
    else:
        w = layer.weights(p.weights, shape, "weights")
    h, wd = x.shape[-2:]
    if p.WhichOneof("ConvolutionPaddingType") == "same":
        top_heavy = p.same.asymmetryMode == 1
        pads = (numerics.same_pads(h, kernel[0], stride[0], dilation[0], top_heavy=top_heavy)
                + numerics.same_pads(wd, kernel[1], stride[1], dilation[1], top_heavy=top_heavy))
    else:
        pads = border(p.valid.paddingAmounts, layer.name)
    value = pad2d(g, value, pads)
    value = g.A.conv2d(value, np.ascontiguousarray(w, np.float32), u32(stride), u32(dilation), np.uint32(groups))
    return [back(add_channel_bias(g, value, bias), layer.shape[-3:])]


def _deconvolution(layer: Layer, value, chw, kernel, stride, groups: int):
    """The full transposed convolution of value (M, C_in, H, W), cropped as the runtime crops it."""
    g, p = layer.g, layer.p
    if pair(p.dilationFactor, 1) != (1, 1):
        raise layer.unsupported("a dilation factor on a deconvolution")
    c_in, h, w = chw
    (kh, kw), (sh, sw) = kernel, stride
    weights = layer.weights(p.weights, (p.kernelChannels, p.outputChannels // groups, kh, kw), "weights")
    if c_in != p.kernelChannels:
        raise ValueError(f"input has {c_in} channels, the weights expect {p.kernelChannels}")
    if sh > 1 or sw > 1:     # (M, C, H, 1, W, 1) padded to (M, C, H, sh, W, sw): zeros between pixels
        value = g.A.reshape(value, i32((-1, c_in, h, 1, w, 1)))
        value = g.A.pad(value, u32([0, 0, 0, 0, 0, 0, 0, sh - 1, 0, 0, 0, sw - 1]), np.asarray(0, np.float32))
        value = g.A.reshape(value, i32((-1, c_in, h * sh, w * sw)))
    value = pad2d(g, value, (kh - 1, kh - 1, kw - 1, kw - 1))
    value = g.A.conv2d(value, _flipped(weights, groups), u32([1, 1]), u32([1, 1]), np.uint32(groups))
    # rows past the full result ((H - 1) sh + kH of them) hold zeros, as the runtime's crop extends it
    have = (h * sh + kh - 1, w * sw + kw - 1)
    full = ((h - 1) * sh + kh, (w - 1) * sw + kw)
    out = tuple(layer.shape[-2:])
    top, left = _crop_start(p, layer.name, full, out)
    short = (max(top + out[0] - have[0], 0), max(left + out[1] - have[1], 0))
    value = pad2d(g, value, (0, short[0], 0, short[1]))
    return crop2d(g, value, (top, left), out)


def _crop_start(p, name: str, full, out) -> tuple[int, int]:
    """Where the runtime's deconvolution output starts in the full result (rows, columns)."""
    if p.WhichOneof("ConvolutionPaddingType") == "same":
        starts = []
        for total in (full[0] - out[0], full[1] - out[1]):
            total = max(total, 0)
            small = total // 2
            starts.append(total - small if p.same.asymmetryMode == 1 else small)
        return starts[0], starts[1]
    top, _, left, _ = border(p.valid.paddingAmounts, name)
    return top, left


def _flipped(w: np.ndarray, groups: int) -> np.ndarray:
    """Deconvolution weights (C_in, C_out / groups, kH, kW) as the ordinary convolution computing the
    same on the spread input: (C_out, C_in / groups, kH, kW), each kernel turned by 180 degrees."""
    cin_g = w.shape[0] // groups
    parts = [w[i * cin_g:(i + 1) * cin_g].transpose(1, 0, 2, 3) for i in range(groups)]
    return np.ascontiguousarray(np.concatenate(parts, axis=0)[:, :, ::-1, ::-1], np.float32)


# -- pooling ----------------------------------------------------------------------------------------
def _pool_pads(layer: Layer, h: int, w: int, kernel, stride) -> tuple[int, int, int, int]:
    """Declared padding (top, bottom, left, right), as the runtime's `_pool_geometry` reads it."""
    p = layer.p
    padding = p.WhichOneof("PoolingPaddingType")
    if padding == "same":
        top_heavy = p.same.asymmetryMode == 1
        return (numerics.same_pads(h, kernel[0], stride[0], top_heavy=top_heavy)
                + numerics.same_pads(w, kernel[1], stride[1], top_heavy=top_heavy))
    if padding == "includeLastPixel":
        ph, pw = pair(p.includeLastPixel.paddingAmounts, 0)
        return (ph, ph, pw, pw)
    return border(p.valid.paddingAmounts, layer.name)


@lowers(NN_LOWERINGS, "pooling", params="type kernelSize stride valid same includeLastPixel avgPoolExcludePadding "
        "globalPooling")
def pooling(layer: Layer) -> list:
    g, p, x = layer.g, layer.p, layer.x()
    kind = {0: "max", 1: "avg", 2: "l2"}.get(p.type)
    if kind is None:
        raise layer.unsupported(f"pooling type {p.type}")
    if x.rank < 3:
        raise ValueError(f"needs an input of rank 3 or more (C, H, W), got shape {x.shape}")
    if p.globalPooling:
        if kind == "l2":
            return [arith.fn(g, "sqrt", arith.reduce(g, "sum", arith.mul(g, x, x), [-2, -1]))]
        return [arith.reduce(g, "max" if kind == "max" else "mean", x, [-2, -1])]
    kernel, stride = pair(p.kernelSize, 3), pair(p.stride, 1)
    (c, h, w), out = x.shape[-3:], tuple(layer.shape[-2:])
    pt, pb, pl, pr = _pool_pads(layer, h, w, kernel, stride)
    need = [(o - 1) * s + k for o, s, k in zip(out, stride, kernel)]
    pb += max(need[0] - (pt + h + pb), 0)
    pr += max(need[1] - (pl + w + pr), 0)
    padded = (pt + h + pb, pl + w + pr)
    natural = tuple((n - k) // s + 1 for n, k, s in zip(padded, kernel, stride))
    value, back = images(g, x)
    if kind == "max":
        value = pad2d(g, value, (pt, pb, pl, pr), -np.inf)
        value = g.A.maxpool2d(g.A.TensorType((-1, c, *natural), np.float32), value, u32(kernel), u32(stride),
                              u32([1, 1]), False)
    else:
        if kind == "l2":
            value = g.A.broadcasting_mul(value, value)
        value = _sum_pool(g, pad2d(g, value, (pt, pb, pl, pr)), kernel, stride)
    if natural != out:
        value = crop2d(g, value, (0, 0), out)
    if kind == "l2":
        value = g.A.sqrt(value)
    elif kind == "avg":
        counts = _window_counts((h, w), kernel, stride, (pt, pb, pl, pr), out, bool(p.avgPoolExcludePadding),
                                _pool_pads(layer, h, w, kernel, stride))
        value = g.A.broadcasting_divide(value, counts)
    return [back(value, (c, *out))]


def _sum_pool(g, value, kernel, stride):
    from coreai.authoring.constant import constant     # b3's sumpool2d takes its dilation only as a constant

    return g.A.sumpool2d(value, u32(kernel), u32(stride), constant(u32([1, 1])))


def _window_counts(size, kernel, stride, pads, out, exclude: bool, declared) -> np.ndarray:
    """How many pixels each average window divides by (the runtime's `pool2d` rule): the image's own
    pixels when the padding is excluded, else those and the declared padding (not the rows added
    for ceil rounding); never less than 1."""
    pt, pb, pl, pr = pads
    h, w = size
    counted = np.zeros((pt + h + pb, pl + w + pr), np.float32)
    if exclude:
        counted[pt:pt + h, pl:pl + w] = 1
    else:
        counted[:declared[0] + h + declared[1], :declared[2] + w + declared[3]] = 1
    windows = sliding_window_view(counted, tuple(kernel))[::stride[0], ::stride[1]][:out[0], :out[1]]
    return np.maximum(windows.sum(axis=(-2, -1)), 1).astype(np.float32).reshape(1, 1, *out)
