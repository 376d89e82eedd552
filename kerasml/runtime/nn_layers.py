"""NeuralNetwork layers with the original rank-5 semantics, one compile function per layer type.

Each `compile_<type>(layer, name)` reads and checks the layer's parameters once, at load time, and
returns `run(inputs) -> outputs`. Blobs are float32 arrays with a leading axis of independent
predictions, then the per-prediction Core ML shape whose last three axes are (C, H, W).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from kerasml.runtime import numerics, weights
from kerasml.runtime.errors import UnsupportedModelError

Run = Callable[[list], list]


def _unsupported(name: str, kind: str, what: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"layer '{name}' ({kind}) uses {what}, which the kerasml runtime does not implement; "
        "convert the model without it or check it on macOS with coremltools"
    )


def _as_images(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """(N, ..., C, H, W) as (M, C, H, W), plus the leading shape to restore."""
    if x.ndim < 4:
        raise ValueError(f"expected a (C, H, W) input per prediction, got shape {x.shape[1:]}")
    return x.reshape((-1,) + x.shape[-3:]), x.shape[:-3]


def _border(amounts, name: str) -> tuple[int, int, int, int]:
    """ValidPadding/PaddingLayer `borderAmounts` [height, width] as (top, bottom, left, right)."""
    edges = list(amounts.borderAmounts)
    if not edges:
        return (0, 0, 0, 0)
    if len(edges) != 2:
        raise ValueError(f"layer '{name}': {len(edges)} border amounts, expected 2 (height, width)")
    return (edges[0].startEdgeSize, edges[0].endEdgeSize, edges[1].startEdgeSize, edges[1].endEdgeSize)


def _pair(values, default: int) -> tuple[int, int]:
    values = list(values)
    return (values[0], values[1]) if values else (default, default)


def compile_convolution(layer, name: str) -> Run:
    p = layer.convolution
    if p.isDeconvolution:
        raise _unsupported(name, "convolution", "deconvolution")
    if len(layer.input) != 1:
        raise _unsupported(name, "convolution", "weights given as a second input")
    kh, kw = _pair(p.kernelSize, 3)
    stride, dilation, groups = _pair(p.stride, 1), _pair(p.dilationFactor, 1), p.nGroups or 1
    w = weights.decode(p.weights, (p.outputChannels, p.kernelChannels, kh, kw), f"layer '{name}' weights")
    bias = weights.vector(p.bias, p.outputChannels, f"layer '{name}' bias") if p.hasBias else None
    padding = p.WhichOneof("ConvolutionPaddingType")
    fixed = _border(p.valid.paddingAmounts, name) if padding == "valid" else None
    top_heavy = padding == "same" and p.same.asymmetryMode == 1
    ws = numerics.Workspace()

    def run(inputs):
        x, lead = _as_images(inputs[0])
        if fixed is None:
            pads = numerics.same_pads(x.shape[2], kh, stride[0], dilation[0], top_heavy=top_heavy)
            pads += numerics.same_pads(x.shape[3], kw, stride[1], dilation[1], top_heavy=top_heavy)
        else:
            pads = fixed
        y = numerics.conv2d(x, w, bias, stride=stride, dilation=dilation, pads=pads, groups=groups, ws=ws)
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
        ph, pw = _pair(p.includeLastPixel.paddingAmounts, 0)
        out_h = numerics.pool_out_size(h, kernel[0], stride[0], ph, ph, ceil=True)
        return (ph, ph, pw, pw), (out_h, numerics.pool_out_size(w, kernel[1], stride[1], pw, pw, ceil=True))
    pads = _border(p.valid.paddingAmounts, name)
    out_h = numerics.pool_out_size(h, kernel[0], stride[0], pads[0], pads[1], ceil=False)
    return pads, (out_h, numerics.pool_out_size(w, kernel[1], stride[1], pads[2], pads[3], ceil=False))


def compile_pooling(layer, name: str) -> Run:
    p = layer.pooling
    kinds = {0: "max", 1: "avg"}
    if p.type not in kinds:
        raise _unsupported(name, "pooling", "L2 pooling")
    kind = kinds[p.type]
    kernel, stride = _pair(p.kernelSize, 3), _pair(p.stride, 1)
    ws = numerics.Workspace()

    def make_run(floor: float | None) -> Run:
        def run(inputs):
            x, lead = _as_images(inputs[0])
            if p.globalPooling:
                y = x.max(axis=(2, 3), keepdims=True) if kind == "max" else x.mean(axis=(2, 3), keepdims=True)
                y = y if floor is None else np.maximum(y, floor)
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


def _activation_fn(p, name: str) -> Callable[[np.ndarray], np.ndarray]:
    kind = p.WhichOneof("NonlinearityType")
    if kind == "ReLU":
        return lambda x: np.maximum(x, 0)
    if kind == "leakyReLU":
        a = np.float32(p.leakyReLU.alpha)
        return lambda x: np.where(x >= 0, x, x * a)
    if kind == "sigmoid":
        return lambda x: 1 / (1 + np.exp(-x))
    if kind == "tanh":
        return np.tanh
    if kind == "linear":
        a, b = np.float32(p.linear.alpha), np.float32(p.linear.beta)
        return lambda x: a * x + b
    if kind == "scaledTanh":
        a, b = np.float32(p.scaledTanh.alpha), np.float32(p.scaledTanh.beta)
        return lambda x: a * np.tanh(b * x)
    if kind == "sigmoidHard":
        a, b = np.float32(p.sigmoidHard.alpha), np.float32(p.sigmoidHard.beta)
        return lambda x: np.clip(a * x + b, 0, 1)
    if kind == "ELU":
        a = np.float32(p.ELU.alpha)
        return lambda x: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))
    if kind == "thresholdedReLU":
        a = np.float32(p.thresholdedReLU.alpha)
        return lambda x: np.where(x > a, x, 0).astype(np.float32)
    if kind == "softsign":
        return lambda x: x / (1 + np.abs(x))
    if kind == "softplus":
        return lambda x: np.logaddexp(x, 0).astype(np.float32)
    raise _unsupported(name, "activation", f"the {kind} activation")


def compile_activation(layer, name: str) -> Run:
    fn = _activation_fn(layer.activation, name)
    if layer.activation.WhichOneof("NonlinearityType") == "ReLU":
        ws = numerics.Workspace()  # the most common layer after convolutions: reuse its buffer

        def relu(inputs):
            return [np.maximum(inputs[0], 0, out=ws.like("out", inputs[0]))]

        relu.in_place = lambda x: np.maximum(x, 0, out=x)  # see NeuralNetworkEngine._fuse
        relu.floor = 0.0
        return relu
    return lambda inputs: [fn(inputs[0]).astype(np.float32, copy=False)]


def _channel_axis(x: np.ndarray, kind: str) -> int:
    """The 'C' axis: third from last for (..., C, 1, 1) blobs, otherwise the last (rank-N vectors)."""
    if kind == "innerProduct" and x.ndim >= 4 and x.shape[-2:] != (1, 1):
        raise ValueError(f"innerProduct needs a (C, 1, 1) input per prediction, got {x.shape[1:]}; add a flatten")
    return x.ndim - 3 if x.ndim >= 4 else x.ndim - 1


def compile_innerProduct(layer, name: str) -> Run:
    p = layer.innerProduct
    if p.int8DynamicQuantize:
        raise _unsupported(name, "innerProduct", "int8 dynamic quantization")
    w = weights.decode(p.weights, (p.outputChannels, p.inputChannels), f"layer '{name}' weights")
    wt = np.ascontiguousarray(w.T)
    bias = weights.vector(p.bias, p.outputChannels, f"layer '{name}' bias") if p.hasBias else None

    def run(inputs):
        x = inputs[0]
        axis = _channel_axis(x, "innerProduct")
        if x.shape[axis] != p.inputChannels:
            raise ValueError(f"input has {x.shape[axis]} channels, the weights expect {p.inputChannels}")
        flat = x.reshape(x.shape[: axis + 1])
        y = flat @ wt
        if bias is not None:
            y += bias
        return [y.reshape(y.shape + x.shape[axis + 1 :])]

    return run


def compile_softmax(layer, name: str) -> Run:
    return lambda inputs: [numerics.softmax(inputs[0], _channel_axis(inputs[0], "softmax"))]


def compile_flatten(layer, name: str) -> Run:
    channel_last = layer.flatten.mode == 1

    def run(inputs):
        x = inputs[0]
        if x.ndim >= 4 and channel_last:
            x = np.moveaxis(x, -3, -1)
        lead = x.shape[:-3] if x.ndim >= 4 else x.shape[:1]
        return [x.reshape(lead + (-1, 1, 1))]

    return run


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


def compile_batchnorm(layer, name: str) -> Run:
    p = layer.batchnorm
    c = p.channels
    gamma = weights.vector(p.gamma, c, f"layer '{name}' gamma")
    beta = weights.vector(p.beta, c, f"layer '{name}' beta")
    if p.computeMeanVar:
        if not p.instanceNormalization:
            raise _unsupported(name, "batchnorm", "mean and variance computed over the batch")
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
        out = inputs[0]
        for x in inputs[1:]:
            out = op(out, x)
        return [out]

    return run


def compile_add(layer, name: str) -> Run:
    return _elementwise(layer, name, "add", np.add)


def compile_multiply(layer, name: str) -> Run:
    return _elementwise(layer, name, "multiply", np.multiply)


def compile_concat(layer, name: str) -> Run:
    if layer.concat.sequenceConcat:
        raise _unsupported(name, "concat", "sequence concatenation")
    return lambda inputs: [np.concatenate(inputs, axis=_channel_axis(inputs[0], "concat"))]


def compile_padding(layer, name: str) -> Run:
    p = layer.padding
    kind = p.WhichOneof("PaddingType")
    top, bottom, left, right = _border(p.paddingAmounts, name)
    mode = {"constant": "constant", "reflection": "reflect", "replication": "edge"}[kind or "constant"]
    extra = {"constant_values": p.constant.value} if mode == "constant" else {}

    def run(inputs):
        x = inputs[0]
        width = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
        return [np.pad(x, width, mode=mode, **extra)]

    return run


def compile_upsample(layer, name: str) -> Run:
    p = layer.upsample
    if list(p.fractionalScalingFactor):
        raise _unsupported(name, "upsample", "fractional scaling factors")
    fh, fw = _pair(p.scalingFactor, 1)
    if p.mode == 0:
        return lambda inputs: [numerics.upsample_nearest(inputs[0], fh, fw)]
    if p.linearUpsampleMode == 0:
        raise _unsupported(name, "upsample", "bilinear upsampling in the DEFAULT corner mode")
    align = p.linearUpsampleMode == 1

    def run(inputs):
        x = inputs[0]
        return [numerics.resize_bilinear(x, x.shape[-2] * fh, x.shape[-1] * fw, align_corners=align)]

    return run


LAYERS: dict[str, Callable[..., Run]] = {
    "convolution": compile_convolution,
    "pooling": compile_pooling,
    "activation": compile_activation,
    "innerProduct": compile_innerProduct,
    "softmax": compile_softmax,
    "flatten": compile_flatten,
    "reshape": compile_reshape,
    "permute": compile_permute,
    "batchnorm": compile_batchnorm,
    "add": compile_add,
    "multiply": compile_multiply,
    "concat": compile_concat,
    "padding": compile_padding,
    "upsample": compile_upsample,
}
