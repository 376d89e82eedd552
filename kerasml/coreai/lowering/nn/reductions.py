"""NeuralNetwork reductions and softmax: the rank-5 `reduce` (axes named C, H, W, kept), the
rank-N `reduceSum` … `reduceLogSumExp` (any axes, keepDims, reduceAll), `argMax` / `argMin`, and
`softmax` (over C, or the last axis of a vector) / `softmaxND`.

Core AI's reductions keep the reduced axes; a reshape to the shape the runtime gives drops them
where the layer does. log-sum-exp takes the maximum out first, as the runtime does (no shift where
the maximum is not finite).
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import Tensor, normalized_axis
from kerasml.coreai.lowering.nn import arith
from kerasml.coreai.lowering.nn.arith import F32, add, c, fn, mul, reduce, sub
from kerasml.coreai.lowering.nn.layer import Layer
from kerasml.coreai.lowering.registry import NN_LOWERINGS, lowers


def _log_sum_exp(g, x: Tensor, axes) -> Tensor:
    top = reduce(g, "max", x, axes)
    finite = arith.greater(g, c(np.inf), fn(g, "abs_", top))
    top = arith.where(g, finite, top, c(0))
    return add(g, fn(g, "log", reduce(g, "sum", fn(g, "exp", sub(g, x, top)), axes)), top)


_ND = {
    "reduceSum": lambda g, x, a: reduce(g, "sum", x, a),
    "reduceMean": lambda g, x, a: reduce(g, "mean", x, a),
    "reduceProd": lambda g, x, a: reduce(g, "product", x, a),
    "reduceMax": lambda g, x, a: reduce(g, "max", x, a),
    "reduceMin": lambda g, x, a: reduce(g, "min", x, a),
    "reduceL1": lambda g, x, a: reduce(g, "sum", fn(g, "abs_", x), a),
    "reduceL2": lambda g, x, a: fn(g, "sqrt", reduce(g, "sum", mul(g, x, x), a)),
    "reduceSumSquare": lambda g, x, a: reduce(g, "sum", mul(g, x, x), a),
    "reduceLogSum": lambda g, x, a: fn(g, "log", reduce(g, "sum", x, a)),
    "reduceLogSumExp": _log_sum_exp,
}


def _reduce_nd(formula):
    def lower(layer: Layer) -> list:
        p, x = layer.p, layer.x()
        axes = list(range(x.rank)) if p.reduceAll else [normalized_axis(a, x.rank) for a in p.axes]
        if not axes:
            raise ValueError("names no axes and does not reduce all")
        return [layer.out(formula(layer.g, x, axes))]
    return lower


for _name, _formula in _ND.items():
    lowers(NN_LOWERINGS, _name, params="axes keepDims reduceAll")(_reduce_nd(_formula))


# ReduceLayerParams.ReduceAxis: CHW, HW, C, H, W; modes as NeuralNetwork.proto numbers them
_RANK5_AXES = {0: (-3, -2, -1), 1: (-2, -1), 2: (-3,), 3: (-2,), 4: (-1,)}
_RANK5_MODES = {
    0: lambda g, x, a, eps: reduce(g, "sum", x, a),
    1: lambda g, x, a, eps: reduce(g, "mean", x, a),
    2: lambda g, x, a, eps: reduce(g, "product", x, a),
    3: lambda g, x, a, eps: reduce(g, "sum", fn(g, "log", add(g, x, eps)), a),
    4: lambda g, x, a, eps: reduce(g, "sum", mul(g, x, x), a),
    5: lambda g, x, a, eps: reduce(g, "sum", fn(g, "abs_", x), a),
    6: lambda g, x, a, eps: fn(g, "sqrt", reduce(g, "sum", mul(g, x, x), a)),
    7: lambda g, x, a, eps: reduce(g, "max", x, a),
    8: lambda g, x, a, eps: reduce(g, "min", x, a),
    9: lambda g, x, a, eps: _arg(g, x, a[0], "max"),
}


@lowers(NN_LOWERINGS, "reduce", params="mode axis epsilon")
def reduce_rank5(layer: Layer) -> list:
    p, x = layer.p, layer.x()
    formula, axes = _RANK5_MODES.get(p.mode), _RANK5_AXES.get(p.axis)
    if formula is None or axes is None or (p.mode == 9 and len(axes) != 1):
        raise layer.unsupported(f"reduce mode {p.mode} over axis {p.axis}")
    if x.rank < len(axes):
        raise ValueError(f"reducing axes {axes} needs rank {len(axes)} or more, got shape {x.shape}")
    return [layer.out(formula(layer.g, x, [a % x.rank for a in axes], c(p.epsilon or 1e-6)))]


def _arg(g, x: Tensor, axis: int, which: str) -> Tensor:
    """The index (as float32) of the first largest / smallest value along `axis`, the axis kept."""
    if which == "min":
        x = mul(g, x, c(-1))
    axis = normalized_axis(axis, x.rank)
    t, (core,) = g.on_axes(x, [axis])
    kept = (*x.shape[:axis], 1, *x.shape[axis + 1:])
    return arith.as_float(g, Tensor(g.A.argmax(t.value, int(core)), kept, np.dtype(np.int32), t.layout))


@lowers(NN_LOWERINGS, "argMax", params="axis removeDim")
@lowers(NN_LOWERINGS, "argMin", params="axis removeDim")
def arg_max_min(layer: Layer) -> list:
    which = "max" if layer.kind == "argMax" else "min"
    return [layer.out(_arg(layer.g, layer.x(), int(layer.p.axis), which))]


def softmax_along(g, x: Tensor, axis: int) -> Tensor:
    t, (core,) = g.on_axes(x, [axis])
    return Tensor(g.A.softmax(t.value, int(core)), x.shape, F32, t.layout)


@lowers(NN_LOWERINGS, "softmax", params="")
def softmax(layer: Layer) -> list:
    x = layer.x()
    return [softmax_along(layer.g, x, x.rank - 3 if x.rank >= 3 else x.rank - 1)]


@lowers(NN_LOWERINGS, "softmaxND", params="axis")
def softmax_nd(layer: Layer) -> list:
    x = layer.x()
    return [softmax_along(layer.g, x, normalized_axis(int(layer.p.axis), x.rank))]
