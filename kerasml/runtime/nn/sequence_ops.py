"""NeuralNetwork layers that index along one axis: embedding lookups, cumulative sums, sliding
windows, top-k and arg sort, band parts of matrices, ranges and slices of a computed start. Same
contract as the other layer modules (`common`); indices arrive as float blobs."""

from __future__ import annotations

import numpy as np

from kerasml.runtime.nn import weights
from kerasml.runtime.nn.common import Run, batch_axis, unsupported
from kerasml.runtime.registry import NN_LAYERS


def _lookup(table: np.ndarray, bias, ids: np.ndarray, vocab: int) -> np.ndarray:
    """Rows of `table` (vocab, size) for float ids; an id outside the dictionary is an error."""
    index = ids.astype(np.int64)
    if index.size and (index.min() < 0 or index.max() >= vocab or not np.array_equal(index, ids)):
        raise ValueError(f"embedding ids must be whole numbers in 0..{vocab - 1}")
    out = table[index]
    return out + bias if bias is not None else out


@NN_LAYERS.register("embedding")
def compile_embedding(layer, name: str) -> Run:
    p = layer.embedding
    table = weights.decode(p.weights, (p.outputChannels, p.inputDim), f"layer '{name}' weights").T.copy()
    bias = weights.vector(p.bias, p.outputChannels, f"layer '{name}' bias") if p.hasBias else None

    def run(inputs):
        x = inputs[0]  # per prediction (x1, 1, 1, 1) or (x1, x2, 1, 1, 1)
        if x.ndim not in (5, 6) or x.shape[-3:] != (1, 1, 1):
            raise ValueError(f"embedding ids must have shape (..., 1, 1, 1) of rank 4 or 5, got {x.shape[1:]}")
        out = _lookup(table, bias, x[..., 0, 0, 0], p.inputDim)
        return [out[..., None, None]]

    return run


@NN_LAYERS.register("embeddingND")
def compile_embeddingND(layer, name: str) -> Run:
    p = layer.embeddingND
    table = weights.decode(p.weights, (p.embeddingSize, p.vocabSize), f"layer '{name}' weights").T.copy()
    bias = weights.vector(p.bias, p.embeddingSize, f"layer '{name}' bias") if p.hasBias else None

    def run(inputs):
        x = inputs[0]
        if x.ndim < 3 or x.shape[-1] != 1:
            raise ValueError(f"embedding ids must have rank 2 or more and a last axis of 1, got {x.shape[1:]}")
        return [_lookup(table, bias, x[..., 0], p.vocabSize)]

    return run


@NN_LAYERS.register("cumSum")
def compile_cumSum(layer, name: str) -> Run:
    p = layer.cumSum
    if len(layer.input) != 1:
        raise unsupported(name, "cumSum", "the axis given as a second input")

    def run(inputs):
        x = inputs[0]
        a = batch_axis(p.axis, x)
        y = np.flip(x, a) if p.reverse else x
        total = np.cumsum(y, axis=a, dtype=np.float32)
        if p.excludeFinalSum:  # shift by one: the first sum is 0
            total = np.concatenate([np.zeros_like(np.take(total, [0], axis=a)), np.delete(total, -1, axis=a)], axis=a)
        return [np.flip(total, a) if p.reverse else total]

    return run


@NN_LAYERS.register("slidingWindows")
def compile_slidingWindows(layer, name: str) -> Run:
    p = layer.slidingWindows
    size, step = int(p.windowSize), int(p.step) or 1

    def run(inputs):
        x = inputs[0]
        a = batch_axis(p.axis, x)
        if x.shape[a] < size:
            raise ValueError(f"a window of {size} does not fit an axis of {x.shape[a]}")
        windows = np.lib.stride_tricks.sliding_window_view(x, size, axis=a)  # window axis last
        index = [slice(None)] * windows.ndim
        index[a] = slice(None, None, step)
        return [np.moveaxis(windows[tuple(index)], -1, a + 1).copy()]

    return run


@NN_LAYERS.register("topK")
def compile_topK(layer, name: str) -> Run:
    p = layer.topK
    if len(layer.input) != 1:
        raise unsupported(name, "topK", "K given as a second input")
    k = int(p.K)

    def run(inputs):
        x = inputs[0]
        a = batch_axis(p.axis, x)
        order = np.argsort(x if p.useBottomK else -x, axis=a, kind="stable")
        index = np.take(order, np.arange(min(k, x.shape[a])), axis=a)
        return [np.take_along_axis(x, index, axis=a), index.astype(np.float32)]

    return run


@NN_LAYERS.register("argSort")
def compile_argSort(layer, name: str) -> Run:
    p = layer.argSort

    def run(inputs):
        x = inputs[0]
        a = batch_axis(p.axis, x)
        return [np.argsort(-x if p.descending else x, axis=a, kind="stable").astype(np.float32)]

    return run


@NN_LAYERS.register("matrixBandPart")
def compile_matrixBandPart(layer, name: str) -> Run:
    lower, upper = layer.matrixBandPart.numLower, layer.matrixBandPart.numUpper

    def run(inputs):
        x = inputs[0]
        if x.ndim < 3:
            raise ValueError(f"needs a matrix (rank 2 or more), got shape {x.shape[1:]}")
        m = np.arange(x.shape[-2])[:, None]
        n = np.arange(x.shape[-1])[None, :]
        band = ((lower < 0) | (m - n <= lower)) & ((upper < 0) | (n - m <= upper))
        return [np.where(band, x, np.float32(0))]

    return run


@NN_LAYERS.register("rangeStatic")
def compile_rangeStatic(layer, name: str) -> Run:
    p = layer.rangeStatic
    if p.stepSizeValue == 0:
        raise ValueError(f"layer '{name}' (rangeStatic) has a step of 0")
    value = np.arange(p.startValue, p.endValue, p.stepSizeValue, dtype=np.float32)[None]
    return lambda inputs: [value]


@NN_LAYERS.register("sliceBySize")
def compile_sliceBySize(layer, name: str) -> Run:
    p = layer.sliceBySize

    def run(inputs):
        x, begin = inputs
        a = batch_axis(p.axis, x)
        start = int(begin.reshape(len(x), -1)[0, 0])
        start += x.shape[a] if start < 0 else 0
        if p.size < 1 or not 0 <= start <= x.shape[a] - p.size:
            raise ValueError(f"a slice of {p.size} from {start} does not fit an axis of {x.shape[a]}")
        return [np.take(x, np.arange(start, start + p.size), axis=a)]

    return run
