"""ML Program shape ops that run on whole batches (the batch axis stays in front): transpose,
squeeze, expand_dims, flatten2d and slice_by_index. The rest of the tensor transformations run one
prediction at a time in `tensor_ops`."""

from __future__ import annotations

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.mil.args import Args, batch_axis
from kerasml.runtime.registry import CONST, MIL_OPS, OPTIONAL_CONST, TENSOR, InputSpec

SLICE_BY_INDEX = InputSpec(x=TENSOR, begin=TENSOR, end=TENSOR, stride=OPTIONAL_CONST, begin_mask=OPTIONAL_CONST,
                           end_mask=OPTIONAL_CONST, squeeze_mask=OPTIONAL_CONST)


@MIL_OPS.register("transpose", inputs=InputSpec(x=TENSOR, perm=CONST))
def transpose(args: Args) -> list:
    x, b = args.get("x"), args.batched("x")
    perm = [batch_axis(p, x, b) for p in args.ints("perm")]
    return [x.transpose(([0] if b else []) + perm)]


@MIL_OPS.register("squeeze", inputs=InputSpec(x=TENSOR, axes=OPTIONAL_CONST))
def squeeze(args: Args) -> list:
    x, b = args.get("x"), args.batched("x")
    axes = args.ints("axes", None)
    if axes is None:
        axes = [i for i, d in enumerate(x.shape[b:]) if d == 1]
    return [np.squeeze(x, axis=tuple(batch_axis(a, x, b) for a in axes))]


@MIL_OPS.register("expand_dims", inputs=InputSpec(x=TENSOR, axes=CONST))
def expand_dims(args: Args) -> list:
    x, b = args.get("x"), args.batched("x")
    axes = args.ints("axes")
    rank = x.ndim - b + len(axes)
    return [np.expand_dims(x, tuple(sorted((a + rank if a < 0 else a) + b for a in axes)))]


@MIL_OPS.register("flatten2d", inputs=InputSpec(x=TENSOR, axis=OPTIONAL_CONST))
def flatten2d(args: Args) -> list:
    x, b = args.get("x"), args.batched("x")
    axis = batch_axis(args.scalar("axis", 1), np.empty(x.shape + (1,)), b)
    lead = x.shape[:b]
    return [x.reshape(lead + (int(np.prod(x.shape[b:axis])), -1))]


@MIL_OPS.register("slice_by_index", inputs=SLICE_BY_INDEX)
def slice_by_index(args: Args) -> list:
    x, b = args.get("x"), args.batched("x")
    rank = x.ndim - b
    masks = {
        m: [bool(v) for v in np.ravel(args.get(m, np.zeros(rank, bool)))]
        for m in ("begin_mask", "end_mask", "squeeze_mask")
    }
    stride = args.ints("stride", None) or [1] * rank
    return [
        kernels.strided_slice(
            x,
            args.ints("begin"),
            args.ints("end"),
            stride,
            masks["begin_mask"],
            masks["end_mask"],
            masks["squeeze_mask"],
            lead=int(b),
        )
    ]
