"""ML Program reductions beyond mean/sum/max/min (`mil_ops`): norms, logs, products, arg max/min.

`axes` absent reduces every axis; reduce_argmax/argmin take one `axis` and return int32 indices
of the first extreme value, as coremltools' definitions (ops/defs/iOS15/reduction.py) do.
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime.mil.basic_ops import OPS, Args, _axis, _reduce, op


def _log_sum_exp(x, axis, keepdims):
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    total = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return total if keepdims else np.squeeze(total, axis=axis)


for _name, _fn in {
    "reduce_l1_norm": lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims),
    "reduce_l2_norm": lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)),
    "reduce_sum_square": lambda x, axis, keepdims: np.sum(x * x, axis=axis, keepdims=keepdims),
    "reduce_log_sum": lambda x, axis, keepdims: np.log(np.sum(x, axis=axis, keepdims=keepdims)),
    "reduce_log_sum_exp": _log_sum_exp,
    "reduce_prod": np.prod,
}.items():
    OPS[_name] = _reduce(_fn)


@op("reduce_argmax", "reduce_argmin")
def reduce_arg(args: Args) -> list:
    x, b = np.asarray(args.f32("x")), args.batched("x")
    axis = _axis(args.scalar("axis", -1), x, b)
    fn = np.argmax if args.kind == "reduce_argmax" else np.argmin
    y = fn(x, axis=axis)
    if args.scalar("keep_dims", False):
        y = np.expand_dims(y, axis)
    return [y.astype(np.int32)]
