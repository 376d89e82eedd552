"""NeuralNetwork layers with the original rank-5 semantics, one compile function per layer type.

Each `compile_<type>(layer, name)` reads and checks the layer's parameters once, at load time, and
returns `run(inputs) -> outputs`. Blobs are float32 arrays with a leading axis of independent
predictions, then the per-prediction Core ML shape whose last three axes are (C, H, W).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kerasml.runtime import kernels, layout_kernels, numerics
from kerasml.runtime.nn import weights
from kerasml.runtime.nn.common import Run, align_ranks, border, pair, unsupported
from kerasml.runtime.registry import NN_LAYERS


def _as_images(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """(N, ..., C, H, W) as (M, C, H, W), plus the leading shape to restore."""
    if x.ndim < 4:
        raise ValueError(f"expected a (C, H, W) input per prediction, got shape {x.shape[1:]}")
    return x.reshape((-1,) + x.shape[-3:]), x.shape[:-3]


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
        x, lead = _as_images(inputs[0])
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
    ws = numerics.Workspace()

    def run(inputs):
        x, lead = _as_images(inputs[0])
        kernel = w
        if dynamic:
            kernel = inputs[1].reshape(inputs[1].shape[-4:]) if inputs[1].shape[0] == 1 else None
            if kernel is None or kernel.shape != shape:
                raise ValueError(f"weights input of shape {inputs[1].shape[1:]}, expected {shape}")
            kernel = np.ascontiguousarray(kernel, np.float32)
        if fixed is None:
            pads = numerics.same_pads(x.shape[2], kh, stride[0], dilation[0], top_heavy=top_heavy)
            pads += numerics.same_pads(x.shape[3], kw, stride[1], dilation[1], top_heavy=top_heavy)
        else:
            pads = fixed
        y = numerics.conv2d(x, kernel, bias, stride=stride, dilation=dilation, pads=pads, groups=groups, ws=ws)
        return [y.reshape(lead + y.shape[1:])]

    return run


def _pool_geometry(p, h: int, w: int, kernel, stride, name: str):
    """(pads, output size) of a pooling layer for an h x w input."""
    padding = p.WhichOneof("PoolingPaddingType")
    if padding == "same":
        top_heavy = p.same.asymmetryMode == 1
        pads = numerics.same_pads(h, kernel[0], stride[0], top_heavy=top_heavy)
        pads += numerics.same_pads(w, kernel[1], stride[1], top_heavy=top_heavy)
        return pads, (-(-h // stride[0]), -(-w // stride[1]))
    if padding == "includeLastPixel":  # Caffe's rounding: the last window may hang over the edge
        ph, pw = pair(p.includeLastPixel.paddingAmounts, 0)
        out_h = numerics.pool_out_size(h, kernel[0], stride[0], ph, ph, ceil=True)
        return (ph, ph, pw, pw), (out_h, numerics.pool_out_size(w, kernel[1], stride[1], pw, pw, ceil=True))
    pads = border(p.valid.paddingAmounts, name)
    out_h = numerics.pool_out_size(h, kernel[0], stride[0], pads[0], pads[1], ceil=False)
    return pads, (out_h, numerics.pool_out_size(w, kernel[1], stride[1], pads[2], pads[3], ceil=False))


def _l2_pool(x: np.ndarray, kernel, stride, pads, out) -> np.ndarray:
    """sqrt of the sum of squares in each window; padding, and any overhang past it, adds zeros."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out
    pt, pb, pl, pr = pads
    extra_b = max((oh - 1) * sh + kh - (pt + x.shape[2] + pb), 0)
    extra_r = max((ow - 1) * sw + kw - (pl + x.shape[3] + pr), 0)
    sq = np.pad(x * x, ((0, 0), (0, 0), (pt, pb + extra_b), (pl, pr + extra_r)))
    windows = sliding_window_view(sq, (kh, kw), axis=(2, 3))[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]
    return np.sqrt(windows.sum(axis=(-2, -1), dtype=np.float32))


@NN_LAYERS.register("pooling")
def compile_pooling(layer, name: str) -> Run:
    p = layer.pooling
    kinds = {0: "max", 1: "avg", 2: "l2"}
    if p.type not in kinds:
        raise unsupported(name, "pooling", f"pooling type {p.type}")
    kind = kinds[p.type]
    kernel, stride = pair(p.kernelSize, 3), pair(p.stride, 1)
    ws = numerics.Workspace()

    def make_run(floor: float | None) -> Run:
        def run(inputs):
            x, lead = _as_images(inputs[0])
            if p.globalPooling and kind == "l2":
                y = np.sqrt(np.sum(x * x, axis=(2, 3), keepdims=True, dtype=np.float32))
            elif p.globalPooling:
                y = x.max(axis=(2, 3), keepdims=True) if kind == "max" else x.mean(axis=(2, 3), keepdims=True)
                y = y if floor is None else np.maximum(y, floor)
            elif kind == "l2":
                y = _l2_pool(x, kernel, stride, *_pool_geometry(p, x.shape[2], x.shape[3], kernel, stride, name))
            else:
                pads, out = _pool_geometry(p, x.shape[2], x.shape[3], kernel, stride, name)
                y = numerics.pool2d(
                    x, kind, kernel, stride, pads, out, exclude_padding=p.avgPoolExcludePadding, floor=floor, ws=ws
                )
            return [y.reshape(lead + y.shape[1:])]

        return run

    run = make_run(None)
    if kind == "max":  # max pooling then ReLU is max pooling from 0 up: see NeuralNetworkEngine._fuse
        run.with_floor = make_run
    return run


def _channel_axis(x: np.ndarray, kind: str) -> int:
    """The 'C' axis: third from last for (..., C, 1, 1) blobs, otherwise the last (rank-N vectors)."""
    return x.ndim - 3 if x.ndim >= 4 else x.ndim - 1


@NN_LAYERS.register("innerProduct")
def compile_innerProduct(layer, name: str) -> Run:
    p = layer.innerProduct
    if p.int8DynamicQuantize:
        raise unsupported(name, "innerProduct", "int8 dynamic quantization")
    w = weights.decode(p.weights, (p.outputChannels, p.inputChannels), f"layer '{name}' weights")
    wt = np.ascontiguousarray(w.T)
    bias = weights.vector(p.bias, p.outputChannels, f"layer '{name}' bias") if p.hasBias else None

    def run(inputs):
        # The spec: ranks 1-3 multiply along the last axis; ranks 4-5 flatten the last three axes
        # (C, H, W) into C_in and give (..., C_out, 1, 1). A rank-3 (C_in, 1, 1) blob, or one that does
        # not end in C_in, is a rank-5-mapping (C, H, W) blob, which flattens like rank 5.
        x = inputs[0]
        rank = x.ndim - 1
        chw = rank == 3 and (x.shape[-2:] == (1, 1) and x.shape[-3] == p.inputChannels or x.shape[-1] != p.inputChannels)
        if rank >= 4 or chw:
            lead, flat = x.shape[:-3], x.reshape(x.shape[:-3] + (-1,))
        else:
            lead, flat = x.shape[:-1], x
        if flat.shape[-1] != p.inputChannels:
            raise ValueError(f"input of shape {x.shape[1:]} has {flat.shape[-1]} values per vector, "
                             f"the weights expect {p.inputChannels}")
        y = flat @ wt
        if bias is not None:
            y += bias
        return [y.reshape(lead + (p.outputChannels, 1, 1)) if flat is not x else y]

    return run


@NN_LAYERS.register("softmax")
def compile_softmax(layer, name: str) -> Run:
    return lambda inputs: [numerics.softmax(inputs[0], _channel_axis(inputs[0], "softmax"))]


@NN_LAYERS.register("flatten")
def compile_flatten(layer, name: str) -> Run:
    channel_last = layer.flatten.mode == 1

    def run(inputs):
        x = inputs[0]
        if x.ndim >= 4 and channel_last:
            x = np.moveaxis(x, -3, -1)
        lead = x.shape[:-3] if x.ndim >= 4 else x.shape[:1]
        return [x.reshape(lead + (-1, 1, 1))]

    return run


@NN_LAYERS.register("reshape")
def compile_reshape(layer, name: str) -> Run:
    p = layer.reshape
    target = tuple(p.targetShape)
    if len(target) not in (3, 4):
        raise ValueError(f"layer '{name}' (reshape): target shape {target} must have 3 or 4 values")
    channel_last = p.mode == 1

    def run(inputs):
        x = inputs[0]
        n = x.shape[0]
        if x[0].size != int(np.prod(target)):
            raise ValueError(f"cannot reshape {x.shape[1:]} to {target}")
        if not channel_last:
            return [x.reshape((n,) + target)]
        hwc = np.moveaxis(x, -3, -1) if x.ndim >= 4 else x
        c, h, w = target[-3:]
        y = hwc.reshape((n,) + target[:-3] + (h, w, c))
        return [np.moveaxis(y, -1, -3)]

    return run


@NN_LAYERS.register("permute")
def compile_permute(layer, name: str) -> Run:
    axes = tuple(layer.permute.axis)
    if sorted(axes) != [0, 1, 2, 3]:
        raise ValueError(f"layer '{name}' (permute): axis {axes} is not a permutation of (0, 1, 2, 3)")

    def run(inputs):
        x = inputs[0]
        squeeze = x.ndim == 4
        x5 = x[:, None] if squeeze else x.reshape((x.shape[0], -1) + x.shape[-3:])
        y = x5.transpose((0,) + tuple(a + 1 for a in axes))
        return [y[:, 0] if squeeze and y.shape[1] == 1 else y]

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
        axis = _channel_axis(x, "batchnorm")
        if x.shape[axis] != c:
            raise ValueError(f"input has {x.shape[axis]} channels, the layer expects {c}")
        tail = (1,) * (x.ndim - 1 - axis)
        return [x * scale.reshape((c,) + tail) + shift.reshape((c,) + tail)]

    return run


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


@NN_LAYERS.register("concat")
def compile_concat(layer, name: str) -> Run:
    if layer.concat.sequenceConcat:  # along axis -5, the sequence axis of rank-5 blobs

        def run_sequence(inputs):
            if inputs[0].ndim < 6:
                raise ValueError(f"sequence concatenation needs rank-5 inputs, got shape {inputs[0].shape[1:]}")
            return [np.concatenate(inputs, axis=-5)]

        return run_sequence
    def run(inputs):
        n = max(x.shape[0] for x in inputs)  # a constant's batch of one repeats for every prediction
        arrays = [np.broadcast_to(x, (n,) + x.shape[1:]) if x.shape[0] == 1 else x for x in inputs]
        return [np.concatenate(arrays, axis=_channel_axis(arrays[0], "concat"))]

    return run


@NN_LAYERS.register("padding")
def compile_padding(layer, name: str) -> Run:
    p = layer.padding
    kind = p.WhichOneof("PaddingType")
    top, bottom, left, right = border(p.paddingAmounts, name)
    mode = {"constant": "constant", "reflection": "reflect", "replication": "edge"}[kind or "constant"]
    extra = {"constant_values": p.constant.value} if mode == "constant" else {}

    def run(inputs):
        x = inputs[0]
        width = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
        if mode == "constant":  # keeps the channels-last layout convolutions hand on
            return [layout_kernels.pad_constant(x, width, p.constant.value)]
        return [np.pad(x, width, mode=mode, **extra)]

    return run
