"""Rank-N NeuralNetwork layers that move data without arithmetic: split, slice, gather, constant
padding, stack, reverse, space/depth reorganisation, fills and broadcasts, plus the rank-5 split,
slice, dot product and constant. Same contract as the other layer modules (`common`); indices arrive as float blobs."""

from __future__ import annotations

import numpy as np

from kerasml.runtime.nn import weights
from kerasml.runtime.nn.common import Run, align_batches, batch_axis, unsupported
from kerasml.runtime.registry import NN_LAYERS


@NN_LAYERS.register("splitND")
def compile_splitND(layer, name: str) -> Run:
    p = layer.splitND
    sizes = [int(v) for v in p.splitSizes]
    count = len(sizes) or int(p.numSplits) or len(layer.output)
    if count != len(layer.output):
        raise ValueError(f"layer '{name}' (splitND) makes {count} pieces for {len(layer.output)} outputs")

    def run(inputs):
        x = inputs[0]
        a = batch_axis(p.axis, x)
        if sizes:
            if sum(sizes) != x.shape[a]:
                raise ValueError(f"split sizes {sizes} do not add up to {x.shape[a]}")
            return np.split(x, np.cumsum(sizes)[:-1], axis=a)
        if x.shape[a] % count:
            raise ValueError(f"axis of {x.shape[a]} does not split into {count} equal pieces")
        return np.split(x, count, axis=a)

    return run


@NN_LAYERS.register("split")
def compile_split(layer, name: str) -> Run:
    count = int(layer.split.nOutputs) or len(layer.output)

    def run(inputs):
        x = inputs[0]
        if x.ndim < 4 or x.shape[-3] % count:
            raise ValueError(f"cannot split the channels of shape {x.shape[1:]} into {count} equal parts")
        return np.split(x, count, axis=-3)

    return run


@NN_LAYERS.register("slice")
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


@NN_LAYERS.register("gather")
def compile_gather(layer, name: str) -> Run:
    axis = layer.gather.axis

    def run(inputs):
        data, idx = inputs
        if data.shape[0] != idx.shape[0] and 1 not in (data.shape[0], idx.shape[0]):
            raise ValueError("data and indices come from different numbers of predictions")
        a = batch_axis(axis, data) - 1
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


@NN_LAYERS.register("gatherAlongAxis")
def compile_gatherAlongAxis(layer, name: str) -> Run:
    axis = layer.gatherAlongAxis.axis

    def run(inputs):
        data, idx = inputs
        a = batch_axis(axis, data)
        positions = idx.astype(np.int64)
        positions = np.where(positions < 0, positions + data.shape[a], positions)
        return [np.take_along_axis(data, positions, axis=a).astype(np.float32)]

    return run


@NN_LAYERS.register("constantPad")
def compile_constantPad(layer, name: str) -> Run:
    p = layer.constantPad
    if len(layer.input) != 1:
        raise unsupported(name, "constantPad", "pad amounts given as a second input")
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


@NN_LAYERS.register("stack")
def compile_stack(layer, name: str) -> Run:
    axis = layer.stack.axis

    def run(inputs):
        rank = inputs[0].ndim  # per-prediction rank + 1 after stacking
        a = axis + rank if axis < 0 else axis
        if not 0 <= a < rank:
            raise ValueError(f"axis {axis} is out of range for stacking rank {rank - 1} inputs")
        return [np.stack(inputs, axis=a + 1)]

    return run


@NN_LAYERS.register("reverse")
def compile_reverse(layer, name: str) -> Run:
    flags = list(layer.reverse.reverseDim)

    def run(inputs):
        x = inputs[0]
        if len(flags) != x.ndim - 1:
            raise ValueError(f"{len(flags)} reverse flags for rank {x.ndim - 1}")
        return [np.flip(x, axis=tuple(i + 1 for i, f in enumerate(flags) if f))]

    return run


@NN_LAYERS.register("reorganizeData")
def compile_reorganizeData(layer, name: str) -> Run:
    p = layer.reorganizeData
    b = int(p.blockSize)
    if b < 2 or p.mode not in (0, 1, 2):
        raise unsupported(name, "reorganizeData", f"mode {p.mode} with block size {b}")

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


@NN_LAYERS.register("dot")
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


@NN_LAYERS.register("loadConstant")
def compile_loadConstant(layer, name: str) -> Run:
    p = layer.loadConstant
    shape = tuple(int(d) for d in p.shape)
    if len(shape) != 3:
        raise ValueError(f"layer '{name}' (loadConstant): shape {shape} must be (C, H, W)")
    value = weights.decode(p.data, shape, f"layer '{name}' data")[None]
    return lambda inputs: [value]


@NN_LAYERS.register("rankPreservingReshape")
def compile_rankPreservingReshape(layer, name: str) -> Run:
    target = [int(d) for d in layer.rankPreservingReshape.targetShape]

    def run(inputs):
        x = inputs[0]
        if len(target) != x.ndim - 1:
            raise ValueError(f"target shape {target} does not have the input's rank {x.ndim - 1}")
        shape = [d if t == 0 else t for t, d in zip(target, x.shape[1:])]
        return [x.reshape([x.shape[0]] + shape)]

    return run


@NN_LAYERS.register("broadcastToStatic")
def compile_broadcastToStatic(layer, name: str) -> Run:
    target = tuple(int(d) for d in layer.broadcastToStatic.targetShape)

    def run(inputs):
        (x,) = align_batches([inputs[0], np.zeros((1,) + target, np.float32)])[:1]
        return [np.broadcast_to(x, (x.shape[0],) + target).copy()]

    return run


@NN_LAYERS.register("broadcastToLike")
def compile_broadcastToLike(layer, name: str) -> Run:
    def run(inputs):
        x, like = align_batches(list(inputs))
        return [np.broadcast_to(x, np.broadcast_shapes(x.shape, like.shape[:1] + like.shape[1:])).copy()]

    return run


@NN_LAYERS.register("fillStatic")
def compile_fillStatic(layer, name: str) -> Run:
    p = layer.fillStatic
    value = np.full((1,) + tuple(int(d) for d in p.targetShape), p.value, np.float32)
    return lambda inputs: [value]


@NN_LAYERS.register("fillLike")
def compile_fillLike(layer, name: str) -> Run:
    value = np.float32(layer.fillLike.value)
    return lambda inputs: [np.full(inputs[0].shape, value, np.float32)]


@NN_LAYERS.register("getShape")
def compile_getShape(layer, name: str) -> Run:
    return lambda inputs: [np.tile(np.asarray(inputs[0].shape[1:], np.float32), (inputs[0].shape[0], 1))]


NN_LAYERS.add("copy", lambda layer, name: lambda inputs: [inputs[0]])
