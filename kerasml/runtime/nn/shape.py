"""NeuralNetwork layers with rank-N semantics (specification 4 and later), one per layer type.

Same contract as `rank5_layers`: `compile_<type>(layer, name)` returns `run(inputs) -> outputs`; arrays
carry a leading axis of independent predictions, so a per-prediction `axis` moves up by one.
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime import numerics
from kerasml.runtime.nn import weights
from kerasml.runtime.nn.common import Run, align_batches, batch_axis, unsupported
from kerasml.runtime.registry import NN_LAYERS


@NN_LAYERS.register("transpose")
def compile_transpose(layer, name: str) -> Run:
    axes = tuple(layer.transpose.axes)
    perm = (0,) + tuple(a + 1 for a in axes)

    def run(inputs):
        if inputs[0].ndim != len(perm):
            raise ValueError(f"axes {axes} do not match an input of rank {inputs[0].ndim - 1}")
        return [inputs[0].transpose(perm)]

    return run


@NN_LAYERS.register("reshapeStatic")
def compile_reshapeStatic(layer, name: str) -> Run:
    target = tuple(layer.reshapeStatic.targetShape)
    return lambda inputs: [inputs[0].reshape((inputs[0].shape[0],) + target)]


@NN_LAYERS.register("flattenTo2D")
def compile_flattenTo2D(layer, name: str) -> Run:
    axis = layer.flattenTo2D.axis

    def run(inputs):
        x = inputs[0]
        rank = x.ndim - 1
        a = axis + rank if axis < 0 else axis
        if not 0 <= a <= rank:
            raise ValueError(f"axis {axis} is out of range for rank {rank}")
        return [x.reshape(x.shape[0], int(np.prod(x.shape[1 : a + 1])), -1)]

    return run


@NN_LAYERS.register("batchedMatmul")
def compile_batchedMatmul(layer, name: str) -> Run:
    p = layer.batchedMatmul
    if p.int8DynamicQuantize:
        raise unsupported(name, "batchedMatmul", "int8 dynamic quantization")
    if len(layer.input) == 2:

        def run_two(inputs):
            a, b = align_batches(list(inputs))
            if p.transposeA:
                a = np.swapaxes(a, -1, -2)
            if p.transposeB:
                b = np.swapaxes(b, -1, -2)
            return [np.matmul(a, b)]

        return run_two
    rows, cols = p.weightMatrixFirstDimension, p.weightMatrixSecondDimension
    # Stored as (columns, rows), one row per output channel, like innerProduct's weights.
    w = np.ascontiguousarray(weights.decode(p.weights, (cols, rows), f"layer '{name}' weights").T)
    bias = weights.vector(p.bias, cols, f"layer '{name}' bias") if p.hasBias else None
    # transposeA / transposeB: the spec says both "are ignored when there is one input"

    def run(inputs):
        x = inputs[0]
        if x.shape[-1] != rows:
            raise ValueError(f"input's last dimension is {x.shape[-1]}, the weights expect {rows}")
        y = x @ w
        if bias is not None:
            y += bias
        return [y]

    return run


@NN_LAYERS.register("softmaxND")
def compile_softmaxND(layer, name: str) -> Run:
    axis = layer.softmaxND.axis
    return lambda inputs: [numerics.softmax(inputs[0], batch_axis(axis, inputs[0]))]


@NN_LAYERS.register("squeeze")
def compile_squeeze(layer, name: str) -> Run:
    p = layer.squeeze

    def run(inputs):
        x = inputs[0]
        if p.squeezeAll:
            return [x.reshape(x.shape[:1] + tuple(d for d in x.shape[1:] if d != 1))]
        return [np.squeeze(x, axis=tuple(batch_axis(a, x) for a in p.axes))]

    return run


@NN_LAYERS.register("expandDims")
def compile_expandDims(layer, name: str) -> Run:
    axes = list(layer.expandDims.axes)

    def run(inputs):
        x = inputs[0]
        rank = x.ndim - 1 + len(axes)
        positions = sorted(a + rank if a < 0 else a for a in axes)
        return [np.expand_dims(x, tuple(a + 1 for a in positions))]

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


@NN_LAYERS.register("loadConstantND")
def compile_loadConstantND(layer, name: str) -> Run:
    p = layer.loadConstantND
    shape = tuple(p.shape)
    value = weights.decode(p.data, shape, f"layer '{name}' data")[None]  # a batch of one: broadcasts
    return lambda inputs: [value]


def _per_prediction(inputs: list, fn) -> np.ndarray:
    """fn(x, *params) for each prediction, where parameters arrive as blobs of their own."""
    return np.stack([fn(x[None], *(p.ravel() for p in params)) for x, *params in zip(*inputs)])[:, 0]


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
        return numerics.strided_slice(x, [int(b) for b in begin], end, strides or [1] * rank,
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
            numerics.strided_slice(x, p.beginIds, p.endIds, list(p.strides), p.beginMasks, p.endMasks, squeeze, lead=1)
        ]

    return run
