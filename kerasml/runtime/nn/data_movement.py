"""NeuralNetwork layers that select, join, pad or fill without arithmetic: concatenation, splits,
slices, stack, reverse, tile, padding, constants and fills, copy. Same contract as the other layer
modules (`common`); indices and sizes that arrive as blobs are float.
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.nn import weights
from kerasml.runtime.nn.common import Run, align_batches, batch_axis, border, channel_axis, unsupported
from kerasml.runtime.registry import NN_LAYERS


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
        return [np.concatenate(arrays, axis=channel_axis(arrays[0]))]

    return run


@NN_LAYERS.register("concatND")
def compile_concatND(layer, name: str) -> Run:
    axis, interleave = layer.concatND.axis, layer.concatND.interleave

    def run(inputs):
        arrays = align_batches(list(inputs))
        a = batch_axis(axis, arrays[0])
        if not interleave:
            return [np.concatenate(arrays, axis=a)]
        if any(x.shape != arrays[0].shape for x in arrays):  # the spec requires identical shapes
            raise ValueError(f"interleaved concatenation needs equal shapes, got {[x.shape[1:] for x in arrays]}")
        # output[i::k] = input i along the axis: stack just after the axis, then merge the two
        stacked = np.stack(arrays, axis=a + 1)
        shape = list(arrays[0].shape)
        shape[a] *= len(arrays)
        return [stacked.reshape(shape)]

    return run


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


def _per_prediction(inputs: list, fn) -> np.ndarray:
    """fn(x, *params) for each prediction, where parameters arrive as blobs of their own."""
    return np.stack([fn(x[None], *(p.ravel() for p in params)) for x, *params in zip(*inputs)])[:, 0]


@NN_LAYERS.register("sliceDynamic")
def compile_sliceDynamic(layer, name: str) -> Run:
    p = layer.sliceDynamic
    count = len(layer.input)

    def slice_one(x, begin, *given):
        rank = x.ndim - 1
        params = [list(p.endIds), list(p.strides), list(p.beginMasks), list(p.endMasks), list(p.squeezeMasks)]
        for i, value in enumerate(given):  # inputs 3-7 replace the matching parameter
            params[i] = [int(v) for v in value]
        end, strides, begin_mask, end_mask, squeeze = params
        begin_mask = begin_mask or [False] * rank
        end_mask = end_mask or [False] * rank
        squeeze = squeeze or [False] * rank
        if len(end) != rank and not all(end_mask):
            raise ValueError(f"slice of rank {len(end)} on an input of rank {rank}")
        end = end or [0] * rank
        return kernels.strided_slice(x, [int(b) for b in begin], end, strides or [1] * rank,
                                      begin_mask, end_mask, squeeze, lead=1)

    if count < 2:
        raise ValueError(f"layer '{name}' (sliceDynamic) needs the begin indices as a second input")
    return lambda inputs: [_per_prediction(inputs, slice_one)]


@NN_LAYERS.register("sliceStatic")
def compile_sliceStatic(layer, name: str) -> Run:
    p = layer.sliceStatic
    rank = len(p.beginIds)
    squeeze = list(p.squeezeMasks) or [False] * rank

    def run(inputs):
        x = inputs[0]
        if x.ndim - 1 != rank:
            raise ValueError(f"slice of rank {rank} on an input of rank {x.ndim - 1}")
        return [
            kernels.strided_slice(x, p.beginIds, p.endIds, list(p.strides), p.beginMasks, p.endMasks, squeeze, lead=1)
        ]

    return run


@NN_LAYERS.register("tile")
def compile_tile(layer, name: str) -> Run:
    fixed = list(layer.tile.reps)

    def tile(x, reps):
        reps = [int(r) for r in reps]
        lead = max(x.ndim - 1 - len(reps), 0)
        return np.tile(x, [1] + [1] * lead + reps)

    if len(layer.input) == 2:  # the repetitions arrive as a second input
        return lambda inputs: [_per_prediction(inputs, tile)]
    return lambda inputs: [tile(inputs[0], fixed)]


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
            return [kernels.pad_constant(x, width, p.constant.value)]
        return [np.pad(x, width, mode=mode, **extra)]

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


@NN_LAYERS.register("loadConstant")
def compile_loadConstant(layer, name: str) -> Run:
    p = layer.loadConstant
    shape = tuple(int(d) for d in p.shape)
    if len(shape) != 3:
        raise ValueError(f"layer '{name}' (loadConstant): shape {shape} must be (C, H, W)")
    value = weights.decode(p.data, shape, f"layer '{name}' data")[None]
    return lambda inputs: [value]


@NN_LAYERS.register("loadConstantND")
def compile_loadConstantND(layer, name: str) -> Run:
    p = layer.loadConstantND
    shape = tuple(p.shape)
    value = weights.decode(p.data, shape, f"layer '{name}' data")[None]  # a batch of one: broadcasts
    return lambda inputs: [value]


@NN_LAYERS.register("fillStatic")
def compile_fillStatic(layer, name: str) -> Run:
    p = layer.fillStatic
    value = np.full((1,) + tuple(int(d) for d in p.targetShape), p.value, np.float32)
    return lambda inputs: [value]


@NN_LAYERS.register("fillLike")
def compile_fillLike(layer, name: str) -> Run:
    value = np.float32(layer.fillLike.value)
    return lambda inputs: [np.full(inputs[0].shape, value, np.float32)]


NN_LAYERS.add("copy", lambda layer, name: lambda inputs: [inputs[0]])
