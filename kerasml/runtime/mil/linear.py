"""ML Program linear algebra: linear and matmul on whole batches, with rank-1 operands and computed
weights one prediction at a time; einsum, and iOS 18's
scaled_dot_product_attention (softmax(Q K^T / sqrt(E) + mask) V; a bool mask keeps the True places).
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.mil.args import Args, align_batched
from kerasml.runtime.mil.per_prediction import per_prediction
from kerasml.runtime.registry import CONST, IOS18, MIL_OPS, OPTIONAL, OPTIONAL_CONST, TENSOR, InputSpec

def _linear_batched(args: Args) -> list:
    x, w = args.f32("x"), args.f32("weight")
    if args.batched("weight"):
        raise args.unsupported("computed weights")
    y = x @ w.T
    bias = args.f32("bias", None)
    return [y + bias if bias is not None else y]


def _matmul_batched(args: Args) -> list:
    x, y = np.asarray(args.f32("x")), np.asarray(args.f32("y"))
    bx, by = args.batched("x"), args.batched("y")
    if x.ndim - bx < 2 or y.ndim - by < 2:
        raise args.unsupported("matmul of rank-1 operands")
    if args.scalar("transpose_x", False):
        x = np.swapaxes(x, -1, -2)
    if args.scalar("transpose_y", False):
        y = np.swapaxes(y, -1, -2)
    x, y = align_batched([x, y], [bx, by])
    return [np.matmul(x, y)]


@per_prediction
def _matmul_each(args: Args) -> list:
    x, y = np.asarray(args.f32("x")), np.asarray(args.f32("y"))
    if args.scalar("transpose_x", False) and x.ndim >= 2:
        x = np.swapaxes(x, -1, -2)
    if args.scalar("transpose_y", False) and y.ndim >= 2:
        y = np.swapaxes(y, -1, -2)
    return [np.matmul(x, y)]


@MIL_OPS.register("matmul", inputs=InputSpec(x=TENSOR, y=TENSOR, transpose_x=OPTIONAL_CONST, transpose_y=OPTIONAL_CONST))
def matmul(args: Args) -> list:
    x, y = np.asarray(args.get("x")), np.asarray(args.get("y"))
    if x.ndim - args.batched("x") < 2 or y.ndim - args.batched("y") < 2:
        return _matmul_each(args)
    return _matmul_batched(args)


@per_prediction
def _linear_each(args: Args) -> list:
    x, w = np.asarray(args.f32("x")), np.asarray(args.f32("weight"))
    bias = args.f32("bias", None)
    y = x @ w.T
    return [y + bias if bias is not None else y]


@MIL_OPS.register("linear", inputs=InputSpec(x=TENSOR, weight=CONST, bias=OPTIONAL_CONST))
def linear(args: Args) -> list:
    if args.batched("weight") or args.batched("bias"):
        return _linear_each(args)
    return _linear_batched(args)


@MIL_OPS.register("einsum", inputs=InputSpec(values=TENSOR, equation=CONST))
@per_prediction
def einsum(args: Args) -> list:
    values = [np.asarray(v, np.float32) for v in args.many("values")]
    return [np.einsum(str(args.scalar("equation")), *values)]


@MIL_OPS.register("scaled_dot_product_attention", opset=IOS18,
                  inputs=InputSpec(query=TENSOR, key=TENSOR, value=TENSOR, attn_mask=OPTIONAL))
@per_prediction
def scaled_dot_product_attention(args: Args) -> list:
    q, k, v = (np.asarray(args.f32(p), np.float32) for p in ("query", "key", "value"))
    scores = q @ np.swapaxes(k, -1, -2) / np.float32(np.sqrt(q.shape[-1]))
    mask = args.get("attn_mask", None)
    if mask is not None:
        mask = np.asarray(mask)
        scores = np.where(mask, scores, -np.inf) if mask.dtype == np.bool_ else scores + mask.astype(np.float32)
    return [kernels.softmax(scores, -1) @ v]
