"""NeuralNetwork pooling layers: `pooling` (max, average, L2; windowed or global), `pooling3d` and
`globalPooling3d`.

2-D max and average pooling run on `kernels.pool2d`; padding is VALID (declared amounts), SAME or
Caffe's `includeLastPixel`. 3-D padding is CUSTOM (the six amounts), VALID or SAME (output
ceil(in / stride), the odd padding after: back, bottom, right).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kerasml.runtime import kernels
from kerasml.runtime.nn.common import Run, as_images, as_volumes, border, pair, unsupported, volume_pads, volume_windows
from kerasml.runtime.registry import NN_LAYERS


def _pool_geometry(p, h: int, w: int, kernel, stride, name: str):
    """(pads, output size) of a pooling layer for an h x w input."""
    padding = p.WhichOneof("PoolingPaddingType")
    if padding == "same":
        top_heavy = p.same.asymmetryMode == 1
        pads = kernels.same_pads(h, kernel[0], stride[0], top_heavy=top_heavy)
        pads += kernels.same_pads(w, kernel[1], stride[1], top_heavy=top_heavy)
        return pads, (-(-h // stride[0]), -(-w // stride[1]))
    if padding == "includeLastPixel":  # Caffe's rounding: the last window may hang over the edge
        ph, pw = pair(p.includeLastPixel.paddingAmounts, 0)
        out_h = kernels.pool_out_size(h, kernel[0], stride[0], ph, ph, ceil=True)
        return (ph, ph, pw, pw), (out_h, kernels.pool_out_size(w, kernel[1], stride[1], pw, pw, ceil=True))
    pads = border(p.valid.paddingAmounts, name)
    out_h = kernels.pool_out_size(h, kernel[0], stride[0], pads[0], pads[1], ceil=False)
    return pads, (out_h, kernels.pool_out_size(w, kernel[1], stride[1], pads[2], pads[3], ceil=False))


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
    ws = kernels.Workspace()

    def make_run(floor: float | None) -> Run:
        def run(inputs):
            x, lead = as_images(inputs[0])
            if p.globalPooling and kind == "l2":
                y = np.sqrt(np.sum(x * x, axis=(2, 3), keepdims=True, dtype=np.float32))
            elif p.globalPooling:
                y = x.max(axis=(2, 3), keepdims=True) if kind == "max" else x.mean(axis=(2, 3), keepdims=True)
                y = y if floor is None else np.maximum(y, floor)
            elif kind == "l2":
                y = _l2_pool(x, kernel, stride, *_pool_geometry(p, x.shape[2], x.shape[3], kernel, stride, name))
            else:
                pads, out = _pool_geometry(p, x.shape[2], x.shape[3], kernel, stride, name)
                y = kernels.pool2d(
                    x, kind, kernel, stride, pads, out, exclude_padding=p.avgPoolExcludePadding, floor=floor, ws=ws
                )
            return [y.reshape(lead + y.shape[1:])]

        return run

    run = make_run(None)
    if kind == "max":  # max pooling then ReLU is max pooling from 0 up: see NeuralNetworkEngine._fuse
        run.with_floor = make_run
    return run


@NN_LAYERS.register("pooling3d")
def compile_pooling3d(layer, name: str) -> Run:
    p = layer.pooling3d
    if p.type not in (0, 1):
        raise unsupported(name, "pooling3d", f"pooling type {p.type}")
    kernel = (p.kernelDepth, p.kernelHeight, p.kernelWidth)
    stride = (p.strideDepth or 1, p.strideHeight or 1, p.strideWidth or 1)

    def run(inputs):
        x, lead = as_volumes(inputs[0], "pooling3d")
        pads = [(0, 0), (0, 0)] + volume_pads(p, x.shape[2:], kernel, stride)
        if p.type == 0:
            y = volume_windows(np.pad(x, pads, constant_values=-np.inf), kernel, stride, (1, 1, 1)).max(axis=(-3, -2, -1))
        else:
            sums = volume_windows(np.pad(x, pads), kernel, stride, (1, 1, 1)).sum(axis=(-3, -2, -1), dtype=np.float32)
            if p.countExcludePadding:  # divide by the real (unpadded) cells of each window
                ones = np.pad(np.ones((1, 1) + x.shape[2:], np.float32), pads)
                counts = volume_windows(ones, kernel, stride, (1, 1, 1)).sum(axis=(-3, -2, -1))
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
        as_volumes(x, "globalPooling3d")
        fn = np.max if kind == 0 else np.mean
        return [fn(x, axis=(-3, -2, -1), keepdims=True).astype(np.float32)]

    return run
