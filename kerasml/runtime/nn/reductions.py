"""NeuralNetwork reductions: the rank-5 `reduce` layer (axes named C, H, W), the rank-N
`reduceSum` … `reduceLogSumExp` layers (any axes, `keepDims`, `reduceAll`), and `argMax` / `argMin`.
Indices come back as float32, as Core ML's NeuralNetwork blobs are float."""

from __future__ import annotations

from typing import Callable

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.nn.common import Run, unsupported
from kerasml.runtime.registry import NN_LAYERS


# name -> f(x, axes, keepdims); sums accumulate in float32 as Core ML's CPU kernels do
_ND: dict[str, Callable] = {
    "reduceSum": lambda x, a, k: np.sum(x, axis=a, keepdims=k),
    "reduceMean": lambda x, a, k: np.mean(x, axis=a, keepdims=k, dtype=np.float32),
    "reduceProd": lambda x, a, k: np.prod(x, axis=a, keepdims=k),
    "reduceMax": lambda x, a, k: np.max(x, axis=a, keepdims=k),
    "reduceMin": lambda x, a, k: np.min(x, axis=a, keepdims=k),
    "reduceL1": lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k),
    "reduceL2": lambda x, a, k: np.sqrt(np.sum(x * x, axis=a, keepdims=k)),
    "reduceSumSquare": lambda x, a, k: np.sum(x * x, axis=a, keepdims=k),
    "reduceLogSum": lambda x, a, k: np.log(np.sum(x, axis=a, keepdims=k)),
    "reduceLogSumExp": kernels.log_sum_exp,
}


def _batched_axes(axes, x: np.ndarray) -> tuple[int, ...]:
    rank = x.ndim - 1
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise ValueError(f"axis {a} is out of range for rank {rank}")
        out.append((a + rank if a < 0 else a) + 1)
    if len(set(out)) != len(out):
        raise ValueError(f"axes {list(axes)} name an axis twice")
    return tuple(out)


def _reduce_nd(kind: str) -> Callable[..., Run]:
    fn = _ND[kind]

    def compile_(layer, name: str) -> Run:
        p = getattr(layer, kind)
        if not p.reduceAll and not list(p.axes):
            raise ValueError(f"layer '{name}' ({kind}) names no axes and does not reduce all")

        def run(inputs):
            x = inputs[0]
            axes = tuple(range(1, x.ndim)) if p.reduceAll else _batched_axes(p.axes, x)
            with np.errstate(divide="ignore", invalid="ignore"):  # log(0) is -inf, as in Core ML
                y = np.asarray(fn(x, axes, p.keepDims), np.float32)
            return [y.reshape(len(x), 1) if y.ndim == 1 else y]  # a rank-0 result is a 1-vector

        return run

    return compile_


# ReduceLayerParams.ReduceAxis: CHW, HW, C, H, W
_RANK5_AXES = {0: (-3, -2, -1), 1: (-2, -1), 2: (-3,), 3: (-2,), 4: (-1,)}
_RANK5_MODES: dict[int, Callable] = {
    0: lambda x, a, eps: np.sum(x, axis=a, keepdims=True),
    1: lambda x, a, eps: np.mean(x, axis=a, keepdims=True, dtype=np.float32),
    2: lambda x, a, eps: np.prod(x, axis=a, keepdims=True),
    3: lambda x, a, eps: np.sum(np.log(x + eps), axis=a, keepdims=True),
    4: lambda x, a, eps: np.sum(x * x, axis=a, keepdims=True),
    5: lambda x, a, eps: np.sum(np.abs(x), axis=a, keepdims=True),
    6: lambda x, a, eps: np.sqrt(np.sum(x * x, axis=a, keepdims=True)),
    7: lambda x, a, eps: np.max(x, axis=a, keepdims=True),
    8: lambda x, a, eps: np.min(x, axis=a, keepdims=True),
    9: lambda x, a, eps: np.expand_dims(np.argmax(x, axis=a[0]), a[0]),
}


@NN_LAYERS.register("reduce")
def compile_reduce(layer, name: str) -> Run:
    p = layer.reduce
    fn = _RANK5_MODES.get(p.mode)
    axes = _RANK5_AXES.get(p.axis)
    if fn is None or axes is None:
        raise unsupported(name, "reduce", f"reduce mode {p.mode} over axis {p.axis}")
    if p.mode == 9 and len(axes) != 1:
        raise unsupported(name, "reduce", "ARGMAX over more than one axis")
    eps = np.float32(p.epsilon or 1e-6)  # "defaults to 1e-6 if not set or is set to 0"

    def run(inputs):
        x = inputs[0]
        if x.ndim - 1 < len(axes):
            raise ValueError(f"reducing axes {axes} needs rank {len(axes)} or more, got shape {x.shape[1:]}")
        with np.errstate(divide="ignore", invalid="ignore"):
            return [np.asarray(fn(x, axes, eps), np.float32)]

    return run


def _arg(kind: str, fn) -> Callable[..., Run]:
    def compile_(layer, name: str) -> Run:
        p = getattr(layer, kind)

        def run(inputs):
            x = inputs[0]
            (axis,) = _batched_axes([p.axis], x)
            y = fn(x, axis=axis, keepdims=not (p.removeDim and x.ndim > 2))
            return [y.astype(np.float32)]

        return run

    return compile_


for _kind in _ND:
    NN_LAYERS.add(_kind, _reduce_nd(_kind))
NN_LAYERS.add("argMax", _arg("argMax", np.argmax))
NN_LAYERS.add("argMin", _arg("argMin", np.argmin))
