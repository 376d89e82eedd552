"""Rank-N NeuralNetwork layers that move data without arithmetic: split, slice, gather, constant
padding, stack, reverse, space/depth reorganisation, fills and broadcasts, plus the rank-5 split,
slice, dot product and constant. Same contract as `nn_layers`; indices arrive as float blobs."""

from __future__ import annotations

from typing import Callable

import numpy as np

from kerasml.runtime.nn import weights
from kerasml.runtime.nn.rank5_layers import Run, _unsupported
from kerasml.runtime.nn.rank_n_layers import _align, _axis


def compile_splitND(layer, name: str) -> Run:
    p = layer.splitND
    sizes = [int(v) for v in p.splitSizes]
    count = len(sizes) or int(p.numSplits) or len(layer.output)
    if count != len(layer.output):
        raise ValueError(f"layer '{name}' (splitND) makes {count} pieces for {len(layer.output)} outputs")

    def run(inputs):
        x = inputs[0]
        a = _axis(p.axis, x)
        if sizes:
            if sum(sizes) != x.shape[a]:
                raise ValueError(f"split sizes {sizes} do not add up to {x.shape[a]}")
            return np.split(x, np.cumsum(sizes)[:-1], axis=a)
        if x.shape[a] % count:
            raise ValueError(f"axis of {x.shape[a]} does not split into {count} equal pieces")
        return np.split(x, count, axis=a)

    return run


def compile_split(layer, name: str) -> Run:
    count = int(layer.split.nOutputs) or len(layer.output)

    def run(inputs):
        x = inputs[0]
        if x.ndim < 4 or x.shape[-3] % count:
            raise ValueError(f"cannot split the channels of shape {x.shape[1:]} into {count} equal parts")
        return np.split(x, count, axis=-3)

    return run


def compile_slice(layer, name: str) -> Run:
    p = layer.slice
    axis = {0: -3, 1: -2, 2: -1}.get(p.axis)
    if axis is None or p.stride < 1:
        raise ValueError(f"layer '{name}' (slice): axis {p.axis} and stride {p.stride} are not valid")

    def run(inputs):
        x = inputs[0]
        if x.ndim - 1 < -axis:
            raise ValueError(f"slicing axis {axis} needs rank {-axis} or more, got shape {x.shape[1:]}")
        n = x.shape[axis]
        start = p.startIndex + n if p.startIndex < 0 else p.startIndex
        end = p.endIndex + n if p.endIndex < 0 else p.endIndex
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, end, int(p.stride))
        return [x[tuple(index)]]

    return run


def compile_gather(layer, name: str) -> Run:
    axis = layer.gather.axis

    def run(inputs):
        data, idx = inputs
        if data.shape[0] != idx.shape[0] and 1 not in (data.shape[0], idx.shape[0]):
            raise ValueError("data and indices come from different numbers of predictions")
        a = _axis(axis, data) - 1
        n = data.shape[1 + a]
        positions = idx.astype(np.int64)
        positions = np.where(positions < 0, positions + n, positions)
        if positions.size and (positions.min() < 0 or positions.max() >= n):
            raise ValueError(f"gather index out of range for an axis of {n}")
        if len(positions) == 1:   # constant indices (one set for every prediction): one take
            return [np.take(data, positions[0], axis=1 + a).astype(np.float32)]
        if len(data) == 1:        # constant data, indices per prediction
            data = np.broadcast_to(data, (len(positions),) + data.shape[1:])
        return [np.stack([np.take(d, i, axis=a) for d, i in zip(data, positions)]).astype(np.float32)]

    return run


def compile_gatherAlongAxis(layer, name: str) -> Run:
    axis = layer.gatherAlongAxis.axis

    def run(inputs):
        data, idx = inputs
        a = _axis(axis, data)
        positions = idx.astype(np.int64)
        positions = np.where(positions < 0, positions + data.shape[a], positions)
        return [np.take_along_axis(data, positions, axis=a).astype(np.float32)]

    return run


def compile_constantPad(layer, name: str) -> Run:
    p = layer.constantPad
    if len(layer.input) != 1:
        raise _unsupported(name, "constantPad", "pad amounts given as a second input")
    amounts = [int(v) for v in p.padAmounts]
    value = np.float32(p.value)

    def run(inputs):
        x = inputs[0]
        rank = x.ndim - 1
        if len(amounts) != 2 * rank:
            raise ValueError(f"{len(amounts)} pad amounts for rank {rank}, expected {2 * rank}")
        pairs = [(amounts[2 * i], amounts[2 * i + 1]) for i in range(rank)]
        if p.padToGivenOutputSizeMode:  # the amounts are output sizes: pad up to them
            pairs = [
                (max(b - d, 0), 0) if b else (0, max(e - d, 0)) for (b, e), d in zip(pairs, x.shape[1:])
            ]
        return [np.pad(x, [(0, 0)] + pairs, constant_values=value)]

    return run


def compile_stack(layer, name: str) -> Run:
    axis = layer.stack.axis

    def run(inputs):
        rank = inputs[0].ndim  # per-prediction rank + 1 after stacking
        a = axis + rank if axis < 0 else axis
        if not 0 <= a < rank:
            raise ValueError(f"axis {axis} is out of range for stacking rank {rank - 1} inputs")
        return [np.stack(inputs, axis=a + 1)]

    return run


def compile_reverse(layer, name: str) -> Run:
    flags = list(layer.reverse.reverseDim)

    def run(inputs):
        x = inputs[0]
        if len(flags) != x.ndim - 1:
            raise ValueError(f"{len(flags)} reverse flags for rank {x.ndim - 1}")
        return [np.flip(x, axis=tuple(i + 1 for i, f in enumerate(flags) if f))]

    return run


def compile_reorganizeData(layer, name: str) -> Run:
    p = layer.reorganizeData
    b = int(p.blockSize)
    if b < 2 or p.mode not in (0, 1, 2):
        raise _unsupported(name, "reorganizeData", f"mode {p.mode} with block size {b}")

    def run(inputs):
        x = inputs[0]
        if x.ndim < 4:
            raise ValueError(f"needs a (C, H, W) input, got shape {x.shape[1:]}")
        lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
        if p.mode == 0:  # SPACE_TO_DEPTH: channel index (i * b + j) * C + c, as TensorFlow
            if h % b or w % b:
                raise ValueError(f"block size {b} does not divide {h}x{w}")
            y = x.reshape(lead + (c, h // b, b, w // b, b))
            y = np.moveaxis(y, (-5, -3, -1), (-3, -5, -4))  # -> (b, b, c, h/b, w/b)
            return [y.reshape(lead + (c * b * b, h // b, w // b))]
        if c % (b * b):
            raise ValueError(f"{c} channels do not split into {b}x{b} blocks")
        if p.mode == 1:  # DEPTH_TO_SPACE: channels (i, j, c)
            y = x.reshape(lead + (b, b, c // (b * b), h, w))
            y = np.moveaxis(y, (-5, -4, -3), (-3, -1, -5))  # -> (c, h, b, w, b)
        else:  # PIXEL_SHUFFLE: channels (c, i, j)
            y = x.reshape(lead + (c // (b * b), b, b, h, w))
            y = np.moveaxis(y, (-4, -3), (-3, -1))  # -> (c, h, b, w, b)
        return [y.reshape(lead + (c // (b * b), h * b, w * b))]

    return run


def compile_dot(layer, name: str) -> Run:
    cosine = layer.dot.cosineSimilarity

    def run(inputs):
        a, b = inputs
        dot = np.sum(a * b, axis=-3, keepdims=True)
        if cosine:
            norms = np.sqrt(np.sum(a * a, axis=-3, keepdims=True) * np.sum(b * b, axis=-3, keepdims=True))
            dot = dot / norms
        return [dot.astype(np.float32)]

    return run


def compile_loadConstant(layer, name: str) -> Run:
    p = layer.loadConstant
    shape = tuple(int(d) for d in p.shape)
    if len(shape) != 3:
        raise ValueError(f"layer '{name}' (loadConstant): shape {shape} must be (C, H, W)")
    value = weights.decode(p.data, shape, f"layer '{name}' data")[None]
    return lambda inputs: [value]


def compile_rankPreservingReshape(layer, name: str) -> Run:
    target = [int(d) for d in layer.rankPreservingReshape.targetShape]

    def run(inputs):
        x = inputs[0]
        if len(target) != x.ndim - 1:
            raise ValueError(f"target shape {target} does not have the input's rank {x.ndim - 1}")
        shape = [d if t == 0 else t for t, d in zip(target, x.shape[1:])]
        return [x.reshape([x.shape[0]] + shape)]

    return run


def compile_broadcastToStatic(layer, name: str) -> Run:
    target = tuple(int(d) for d in layer.broadcastToStatic.targetShape)

    def run(inputs):
        (x,) = _align([inputs[0], np.zeros((1,) + target, np.float32)])[:1]
        return [np.broadcast_to(x, (x.shape[0],) + target).copy()]

    return run


def compile_broadcastToLike(layer, name: str) -> Run:
    def run(inputs):
        x, like = _align(list(inputs))
        return [np.broadcast_to(x, np.broadcast_shapes(x.shape, like.shape[:1] + like.shape[1:])).copy()]

    return run


def compile_fillStatic(layer, name: str) -> Run:
    p = layer.fillStatic
    value = np.full((1,) + tuple(int(d) for d in p.targetShape), p.value, np.float32)
    return lambda inputs: [value]


def compile_fillLike(layer, name: str) -> Run:
    value = np.float32(layer.fillLike.value)
    return lambda inputs: [np.full(inputs[0].shape, value, np.float32)]


def compile_getShape(layer, name: str) -> Run:
    return lambda inputs: [np.tile(np.asarray(inputs[0].shape[1:], np.float32), (inputs[0].shape[0], 1))]


def _lookup(table: np.ndarray, bias, ids: np.ndarray, vocab: int) -> np.ndarray:
    """Rows of `table` (vocab, size) for float ids; an id outside the dictionary is an error."""
    index = ids.astype(np.int64)
    if index.size and (index.min() < 0 or index.max() >= vocab or not np.array_equal(index, ids)):
        raise ValueError(f"embedding ids must be whole numbers in 0..{vocab - 1}")
    out = table[index]
    return out + bias if bias is not None else out


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


def compile_cumSum(layer, name: str) -> Run:
    p = layer.cumSum
    if len(layer.input) != 1:
        raise _unsupported(name, "cumSum", "the axis given as a second input")

    def run(inputs):
        x = inputs[0]
        a = _axis(p.axis, x)
        y = np.flip(x, a) if p.reverse else x
        total = np.cumsum(y, axis=a, dtype=np.float32)
        if p.excludeFinalSum:  # shift by one: the first sum is 0
            total = np.concatenate([np.zeros_like(np.take(total, [0], axis=a)), np.delete(total, -1, axis=a)], axis=a)
        return [np.flip(total, a) if p.reverse else total]

    return run


def compile_slidingWindows(layer, name: str) -> Run:
    p = layer.slidingWindows
    size, step = int(p.windowSize), int(p.step) or 1

    def run(inputs):
        x = inputs[0]
        a = _axis(p.axis, x)
        if x.shape[a] < size:
            raise ValueError(f"a window of {size} does not fit an axis of {x.shape[a]}")
        windows = np.lib.stride_tricks.sliding_window_view(x, size, axis=a)  # window axis last
        index = [slice(None)] * windows.ndim
        index[a] = slice(None, None, step)
        return [np.moveaxis(windows[tuple(index)], -1, a + 1).copy()]

    return run


def compile_topK(layer, name: str) -> Run:
    p = layer.topK
    if len(layer.input) != 1:
        raise _unsupported(name, "topK", "K given as a second input")
    k = int(p.K)

    def run(inputs):
        x = inputs[0]
        a = _axis(p.axis, x)
        order = np.argsort(x if p.useBottomK else -x, axis=a, kind="stable")
        index = np.take(order, np.arange(min(k, x.shape[a])), axis=a)
        return [np.take_along_axis(x, index, axis=a), index.astype(np.float32)]

    return run


def compile_argSort(layer, name: str) -> Run:
    p = layer.argSort

    def run(inputs):
        x = inputs[0]
        a = _axis(p.axis, x)
        return [np.argsort(-x if p.descending else x, axis=a, kind="stable").astype(np.float32)]

    return run


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


def compile_rangeStatic(layer, name: str) -> Run:
    p = layer.rangeStatic
    if p.stepSizeValue == 0:
        raise ValueError(f"layer '{name}' (rangeStatic) has a step of 0")
    value = np.arange(p.startValue, p.endValue, p.stepSizeValue, dtype=np.float32)[None]
    return lambda inputs: [value]


def compile_sliceBySize(layer, name: str) -> Run:
    p = layer.sliceBySize

    def run(inputs):
        x, begin = inputs
        a = _axis(p.axis, x)
        start = int(begin.reshape(len(x), -1)[0, 0])
        start += x.shape[a] if start < 0 else 0
        if p.size < 1 or not 0 <= start <= x.shape[a] - p.size:
            raise ValueError(f"a slice of {p.size} from {start} does not fit an axis of {x.shape[a]}")
        return [np.take(x, np.arange(start, start + p.size), axis=a)]

    return run


LAYERS_DATA: dict[str, Callable[..., Run]] = {
    "splitND": compile_splitND,
    "split": compile_split,
    "slice": compile_slice,
    "gather": compile_gather,
    "gatherAlongAxis": compile_gatherAlongAxis,
    "constantPad": compile_constantPad,
    "stack": compile_stack,
    "reverse": compile_reverse,
    "reorganizeData": compile_reorganizeData,
    "dot": compile_dot,
    "loadConstant": compile_loadConstant,
    "rankPreservingReshape": compile_rankPreservingReshape,
    "broadcastToStatic": compile_broadcastToStatic,
    "broadcastToLike": compile_broadcastToLike,
    "fillStatic": compile_fillStatic,
    "fillLike": compile_fillLike,
    "getShape": compile_getShape,
    "copy": lambda layer, name: lambda inputs: [inputs[0]],
    "embedding": compile_embedding,
    "embeddingND": compile_embeddingND,
    "cumSum": compile_cumSum,
    "slidingWindows": compile_slidingWindows,
    "topK": compile_topK,
    "argSort": compile_argSort,
    "matrixBandPart": compile_matrixBandPart,
    "rangeStatic": compile_rangeStatic,
    "sliceBySize": compile_sliceBySize,
}
