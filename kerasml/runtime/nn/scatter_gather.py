"""NeuralNetwork scatter and gather layers (`scatter`, `scatterAlongAxis`, `scatterND`, `gather`,
`gatherAlongAxis`, `gatherND`), as NeuralNetwork.proto states them: indices arrive as float blobs (negative ones count from the end),
`ScatterMode` combines each update with the value already there (UPDATE replaces it) and repeated
indices combine one after another. Scatters and gatherND run one prediction at a time; constants carry a batch of one."""

from __future__ import annotations

import numpy as np

from kerasml.runtime.nn.common import Run, batch_axis, unsupported
from kerasml.runtime.registry import NN_LAYERS

# ScatterMode: SCATTER_UPDATE = 0, ADD, SUB, MUL, DIV, MAX, MIN
_MODES = {1: np.add, 2: np.subtract, 3: np.multiply, 4: np.divide, 5: np.maximum, 6: np.minimum}


def _per_prediction(inputs: list[np.ndarray], fn) -> list[np.ndarray]:
    n = max(len(x) for x in inputs)
    if any(len(x) not in (1, n) for x in inputs):
        raise ValueError("the inputs come from different numbers of predictions")
    parts = [fn(*(x[i if len(x) > 1 else 0] for x in inputs)) for i in range(n)]
    return [np.stack(parts).astype(np.float32)]


def _indices(x: np.ndarray) -> np.ndarray:
    return np.asarray(x).astype(np.int64)


def _combiner(mode: int, name: str, kind: str):
    if mode != 0 and mode not in _MODES:
        raise unsupported(name, kind, f"scatter mode {mode}")

    def combine(data: np.ndarray, where: tuple, updates: np.ndarray) -> np.ndarray:
        out = np.array(data, np.float32)
        if mode == 0:
            out[where] = updates
        else:
            _MODES[mode].at(out, where, updates)
        return out

    return combine


@NN_LAYERS.register("scatter")
def compile_scatter(layer, name: str) -> Run:
    p = layer.scatter
    combine = _combiner(p.mode, name, "scatter")

    def one(data, indices, updates):
        axis = batch_axis(p.axis, data[None]) - 1
        indices = _indices(indices)
        grids = np.indices(updates.shape, sparse=True)
        placed = indices.reshape((1,) * axis + indices.shape + (1,) * (data.ndim - axis - 1))
        return combine(data, tuple(grids[:axis]) + (placed,) + tuple(grids[axis + indices.ndim :]), updates)

    return lambda inputs: _per_prediction(list(inputs), one)


@NN_LAYERS.register("scatterAlongAxis")
def compile_scatterAlongAxis(layer, name: str) -> Run:
    p = layer.scatterAlongAxis
    combine = _combiner(p.mode, name, "scatterAlongAxis")

    def one(data, indices, updates):
        axis = batch_axis(p.axis, data[None]) - 1
        grids = list(np.indices(indices.shape, sparse=True))
        grids[axis] = _indices(indices)
        return combine(data, tuple(grids), updates)

    return lambda inputs: _per_prediction(list(inputs), one)


@NN_LAYERS.register("scatterND")
def compile_scatterND(layer, name: str) -> Run:
    combine = _combiner(layer.scatterND.mode, name, "scatterND")

    def one(data, indices, updates):
        return combine(data, tuple(np.moveaxis(_indices(indices), -1, 0)), updates)

    return lambda inputs: _per_prediction(list(inputs), one)


@NN_LAYERS.register("gatherND")
def compile_gatherND(layer, name: str) -> Run:
    def one(data, indices):
        return data[tuple(np.moveaxis(_indices(indices), -1, 0))]

    return lambda inputs: _per_prediction(list(inputs), one)


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
