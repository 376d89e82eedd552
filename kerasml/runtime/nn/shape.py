"""NeuralNetwork layers that change a blob's shape or axis order without changing its values:
reshapes, flattens, permute and transpose, squeeze and expand, broadcasts, space/depth reorganisation
and the shape itself. Rank-5 layers (`flatten`, `reshape`, `permute`) read the last three axes as
(C, H, W); rank-N layers (specification 4+) take per-prediction axes, which move up by one past the
leading axis of predictions.
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime.nn.common import Run, align_batches, batch_axis, unsupported
from kerasml.runtime.registry import NN_LAYERS


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


@NN_LAYERS.register("getShape")
def compile_getShape(layer, name: str) -> Run:
    return lambda inputs: [np.tile(np.asarray(inputs[0].shape[1:], np.float32), (inputs[0].shape[0], 1))]
