"""ML Program reductions. Core AI's reductions keep the reduced axes (size 1), so a reshape to the
declared shape follows when the program drops them (`keep_dims` false, MIL's default)."""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import Tensor, i32
from kerasml.coreai.lowering.mil.op import Op
from kerasml.coreai.lowering.registry import MIL_LOWERINGS, lowers


def _reduce(op, x: Tensor, core_name: str) -> Tensor:
    g = op.g
    axes = op.ints("axes", None)
    axes = list(range(x.rank)) if axes is None else [a % x.rank for a in axes]
    kept = tuple(1 if a in axes else d for a, d in enumerate(x.shape))
    x, core = g.on_axes(x, axes)
    value = getattr(g.A, core_name)(x.value, i32(core))
    return g.reshape(Tensor(value, kept, op.dtype, x.layout), op.shape)


_SIMPLE = {"reduce_mean": "reduce_mean", "reduce_sum": "reduce_sum", "reduce_max": "reduce_max",
           "reduce_min": "reduce_min", "reduce_prod": "reduce_product"}

for _mil, _core in _SIMPLE.items():
    lowers(MIL_LOWERINGS, _mil, params="x axes keep_dims")(
        lambda op, _core=_core: [_reduce(op, op.batched("x"), _core)])


@lowers(MIL_LOWERINGS, "reduce_l1_norm", "reduce_l2_norm", "reduce_sum_square", "reduce_log_sum",
        "reduce_log_sum_exp", params="x axes keep_dims")
def reduce_composed(op: Op) -> list:
    g, x = op.g, op.batched("x")
    if op.kind == "reduce_l1_norm":
        return [_reduce(op, g.unary(g.A.abs_, x), "reduce_sum")]
    if op.kind in ("reduce_l2_norm", "reduce_sum_square"):
        total = _reduce(op, g.elementwise(g.A.broadcasting_mul, [x, x], x.shape, x.dtype), "reduce_sum")
        return [g.unary(g.A.sqrt, total) if op.kind == "reduce_l2_norm" else total]
    if op.kind == "reduce_log_sum":
        return [g.unary(g.A.log, _reduce(op, x, "reduce_sum"))]
    # log-sum-exp without overflow: the maximum taken out first (keep_dims so it broadcasts back)
    axes = op.ints("axes", None)
    axes = list(range(x.rank)) if axes is None else [a % x.rank for a in axes]
    kept = tuple(1 if a in axes else d for a, d in enumerate(x.shape))
    top = _reduce(_Kept(op, kept), x, "reduce_max")
    shifted = g.unary(g.A.exp, g.elementwise(g.A.broadcasting_sub, [x, top], x.shape, x.dtype))
    total = g.unary(g.A.log, _reduce(_Kept(op, kept), shifted, "reduce_sum"))
    return [g.reshape(g.elementwise(g.A.broadcasting_add, [total, top], kept, x.dtype), op.shape)]


class _Kept:
    """The op with its reduced axes kept, for intermediate results."""

    def __init__(self, op: Op, kept):
        self.g, self.dtype, self.shape = op.g, op.dtype, tuple(kept)
        self.ints = op.ints


@lowers(MIL_LOWERINGS, "reduce_argmax", "reduce_argmin", params="x axis keep_dims output_dtype")
def reduce_arg(op: Op) -> list:
    g, x = op.g, op.batched("x")
    axis = int(op.scalar("axis", -1))
    if op.kind == "reduce_argmin":
        x = g.elementwise(g.A.broadcasting_mul, [x, np.asarray(-1, x.dtype)], x.shape, x.dtype)
    x, (core,) = g.on_axes(x, [axis])
    value = g.A.argmax(x.value, int(core))          # Core AI's indices are uint32
    if op.dtype != np.uint32:
        value = g.A.cast(value, op.dtype.type)
    a = axis % x.rank
    kept = x.shape[:a] + (1,) + x.shape[a + 1:]
    return [g.reshape(Tensor(value, kept, op.dtype, x.layout), op.shape)]
