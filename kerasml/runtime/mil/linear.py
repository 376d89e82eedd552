"""ML Program linear algebra beyond the batched fast paths of `mil_ops`: matmul with rank-1
operands and linear with computed weights (one prediction at a time), einsum, and iOS 18's
scaled_dot_product_attention (softmax(Q K^T / sqrt(E) + mask) V; a bool mask keeps the True places).
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime import numerics
from kerasml.runtime.mil.per_prediction import per_prediction
from kerasml.runtime.mil.basic_ops import OPS, Args, op

_batched_matmul = OPS["matmul"]
_batched_linear = OPS["linear"]


@per_prediction
def _matmul_each(args: Args) -> list:
    x, y = np.asarray(args.f32("x")), np.asarray(args.f32("y"))
    if args.scalar("transpose_x", False) and x.ndim >= 2:
        x = np.swapaxes(x, -1, -2)
    if args.scalar("transpose_y", False) and y.ndim >= 2:
        y = np.swapaxes(y, -1, -2)
    return [np.matmul(x, y)]


@op("matmul")
def matmul(args: Args) -> list:
    x, y = np.asarray(args.get("x")), np.asarray(args.get("y"))
    if x.ndim - args.batched("x") < 2 or y.ndim - args.batched("y") < 2:
        return _matmul_each(args)
    return _batched_matmul(args)


@per_prediction
def _linear_each(args: Args) -> list:
    x, w = np.asarray(args.f32("x")), np.asarray(args.f32("weight"))
    bias = args.f32("bias", None)
    y = x @ w.T
    return [y + bias if bias is not None else y]


@op("linear")
def linear(args: Args) -> list:
    if args.batched("weight") or args.batched("bias"):
        return _linear_each(args)
    return _batched_linear(args)


@op("einsum")
@per_prediction
def einsum(args: Args) -> list:
    values = [np.asarray(v, np.float32) for v in args.many("values")]
    return [np.einsum(str(args.scalar("equation")), *values)]


@op("scaled_dot_product_attention")
@per_prediction
def scaled_dot_product_attention(args: Args) -> list:
    q, k, v = (np.asarray(args.f32(p), np.float32) for p in ("query", "key", "value"))
    scores = q @ np.swapaxes(k, -1, -2) / np.float32(np.sqrt(q.shape[-1]))
    mask = args.get("attn_mask", None)
    if mask is not None:
        mask = np.asarray(mask)
        scores = np.where(mask, scores, -np.inf) if mask.dtype == np.bool_ else scores + mask.astype(np.float32)
    return [numerics.softmax(scores, -1) @ v]
