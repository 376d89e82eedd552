"""ML Program reductions: mean, sum, max, min, norms, logs, products, arg max/min.

`axes` absent reduces every axis; reduce_argmax/argmin take one `axis` and return int32 indices
of the first extreme value, as coremltools' definitions (ops/defs/iOS15/reduction.py) do.
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.mil.args import Args, batch_axis
from kerasml.runtime.registry import IOS17, MIL_OPS, OPTIONAL_CONST, TENSOR, InputSpec

REDUCE = InputSpec(x=TENSOR, axes=OPTIONAL_CONST, keep_dims=OPTIONAL_CONST)
REDUCE_ARG = InputSpec(x=TENSOR, axis=OPTIONAL_CONST, keep_dims=OPTIONAL_CONST)


def _reduce(fn):
    def run(args: Args) -> list:
        x, b = args.f32("x"), args.batched("x")
        axes = args.ints("axes", None)
        axes = tuple(range(b, x.ndim)) if axes is None else tuple(batch_axis(a, x, b) for a in axes)
        return [fn(x, axis=axes, keepdims=bool(args.scalar("keep_dims", False)))]

    return run


for _name, _fn in {"reduce_mean": np.mean, "reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min}.items():
    MIL_OPS.add(_name, _reduce(_fn), inputs=REDUCE)


for _name, _fn in {
    "reduce_l1_norm": lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims),
    "reduce_l2_norm": lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)),
    "reduce_sum_square": lambda x, axis, keepdims: np.sum(x * x, axis=axis, keepdims=keepdims),
    "reduce_log_sum": lambda x, axis, keepdims: np.log(np.sum(x, axis=axis, keepdims=keepdims)),
    "reduce_log_sum_exp": kernels.log_sum_exp,
    "reduce_prod": np.prod,
}.items():
    MIL_OPS.add(_name, _reduce(_fn), inputs=REDUCE)


@MIL_OPS.register("reduce_argmax", "reduce_argmin", inputs=REDUCE_ARG)
@MIL_OPS.register("reduce_argmax", "reduce_argmin", opset=IOS17, inputs=REDUCE_ARG.but(output_dtype=OPTIONAL_CONST))
def reduce_arg(args: Args) -> list:
    x, b = np.asarray(args.f32("x")), args.batched("x")
    axis = batch_axis(args.scalar("axis", -1), x, b)
    fn = np.argmax if args.kind == "reduce_argmax" else np.argmin
    y = fn(x, axis=axis)
    if args.scalar("keep_dims", False):
        y = np.expand_dims(y, axis)
    return [y.astype(np.int32)]
