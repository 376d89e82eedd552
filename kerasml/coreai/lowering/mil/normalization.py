"""ML Program normalisation: batch_norm, instance_norm, layer_norm, l2_norm, local_response_norm.

Core AI has no normalisation ops; each is written out as coremltools defines it (biased variance,
epsilon inside the square root). batch_norm folds into one multiply and one add per channel,
computed here from the constants, the same decomposition Apple's coreai-torch uses.
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.graph import Tensor, i32
from kerasml.coreai.lowering.mil.op import Op
from kerasml.coreai.lowering.registry import MIL_LOWERINGS, lowers


def _channel(values, rank: int, dtype) -> np.ndarray:
    """A per-channel constant (axis 1 of each prediction) shaped to broadcast against rank `rank`."""
    return np.asarray(values, np.float32).reshape((1, -1) + (1,) * (rank - 2)).astype(dtype)


@lowers(MIL_LOWERINGS, "batch_norm", params="x mean variance gamma beta epsilon")
def batch_norm(op: Op) -> list:
    g, x = op.g, op.batched("x")
    mean, var = (np.asarray(op.const(p), np.float32) for p in ("mean", "variance"))
    gamma, beta = op.const("gamma", None), op.const("beta", None)
    eps = np.float32(op.scalar("epsilon", 1e-5))
    scale = (1 / np.sqrt(var + eps)) * (np.asarray(gamma, np.float32) if gamma is not None else 1)
    shift = (np.asarray(beta, np.float32) if beta is not None else 0) - mean * scale
    y = g.elementwise(g.A.broadcasting_mul, [x, _channel(scale, x.rank, x.dtype)], x.shape, x.dtype)
    return [g.elementwise(g.A.broadcasting_add, [y, _channel(shift, x.rank, x.dtype)], x.shape, x.dtype)]


def normalized(g, x: Tensor, axes: list[int], eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) over per-prediction `axes`."""
    axes = [a % x.rank for a in axes]
    kept = tuple(1 if a in axes else d for a, d in enumerate(x.shape))
    t, core = g.on_axes(x, axes)
    mean = Tensor(g.A.reduce_mean(t.value, i32(core)), kept, x.dtype, t.layout)
    centred = g.elementwise(g.A.broadcasting_sub, [t, mean], x.shape, x.dtype)
    squared = g.elementwise(g.A.broadcasting_mul, [centred, centred], x.shape, x.dtype)
    t2, core2 = g.on_axes(squared, axes)
    var = Tensor(g.A.reduce_mean(t2.value, i32(core2)), kept, x.dtype, t2.layout)
    var = g.elementwise(g.A.broadcasting_add, [var, np.asarray(eps, x.dtype)], kept, x.dtype)
    return g.elementwise(g.A.broadcasting_mul, [centred, g.unary(g.A.rsqrt, var)], x.shape, x.dtype)


@lowers(MIL_LOWERINGS, "layer_norm", params="x axes gamma beta epsilon")
def layer_norm(op: Op) -> list:
    g, x = op.g, op.batched("x")
    axes = op.ints("axes", None)
    axes = list(range(x.rank)) if axes is None else [a % x.rank for a in axes]
    y = normalized(g, x, axes, float(op.scalar("epsilon", 1e-5)))
    shape = tuple(x.shape[i] if i in axes else 1 for i in range(x.rank))
    for param, fn in (("gamma", g.A.broadcasting_mul), ("beta", g.A.broadcasting_add)):
        value = op.const(param, None)
        if value is not None:
            y = g.elementwise(fn, [y, np.asarray(value, x.dtype).reshape(shape)], x.shape, x.dtype)
    return [y]


@lowers(MIL_LOWERINGS, "instance_norm", params="x gamma beta epsilon")
def instance_norm(op: Op) -> list:
    g, x = op.g, op.batched("x")
    y = normalized(g, x, list(range(2, x.rank)), float(op.scalar("epsilon", 1e-5)))
    for param, fn in (("gamma", g.A.broadcasting_mul), ("beta", g.A.broadcasting_add)):
        value = op.const(param, None)
        if value is not None:
            y = g.elementwise(fn, [y, _channel(value, x.rank, x.dtype)], x.shape, x.dtype)
    return [y]


@lowers(MIL_LOWERINGS, "l2_norm", params="x axes epsilon")
def l2_norm(op: Op) -> list:
    """x / sqrt(sum of x^2 + eps) over the last three axes (all of them for rank <= 3)."""
    g, x = op.g, op.batched("x")
    axes = list(range(max(0, x.rank - 3), x.rank))
    kept = tuple(1 if a in axes else d for a, d in enumerate(x.shape))
    squared = g.elementwise(g.A.broadcasting_mul, [x, x], x.shape, x.dtype)
    t, core = g.on_axes(squared, axes)
    total = Tensor(g.A.reduce_sum(t.value, i32(core)), kept, x.dtype, t.layout)
    total = g.elementwise(g.A.broadcasting_add, [total, np.asarray(op.scalar("epsilon", 1e-6), x.dtype)], kept, x.dtype)
    return [g.elementwise(g.A.broadcasting_mul, [x, g.unary(g.A.rsqrt, total)], x.shape, x.dtype)]


@lowers(MIL_LOWERINGS, "local_response_norm", params="x size alpha beta k")
def local_response_norm(op: Op) -> list:
    """x / (k + alpha / size * sum of x^2 over channels c - size // 2 ... c + (size - 1) // 2)^beta:
    the window sums are a sum pool down the channels of x^2 viewed as (B, 1, C, rest)."""
    from kerasml.coreai.lowering.mil.conv_pool import sum_pool

    g, x = op.g, op.batched("x")
    if x.rank < 3:
        raise op.unsupported(f"a rank-{x.rank} input")
    size = int(op.scalar("size"))
    alpha, beta, k = (float(op.scalar(n, d)) for n, d in (("alpha", 1e-4), ("beta", 0.75), ("k", 1.0)))
    b, c = x.shape[:2]
    rest = int(np.prod(x.shape[2:]))
    squared = g.elementwise(g.A.broadcasting_mul, [x, x], x.shape, x.dtype)
    planes = g.reshape(squared, (b, 1, c, rest))
    value, batch = g.spatial(planes, 2)
    value = g.A.pad(value, np.asarray([0, 0, 0, 0, size // 2, (size - 1) // 2, 0, 0], np.uint32),
                    np.asarray(0, x.dtype))
    value = sum_pool(g, value, [size, 1], [1, 1], [c, rest], 1)
    sums = g.reshape(g.from_spatial(value, (b, 1, c, rest), x.dtype, batch), x.shape)
    scaled = g.elementwise(g.A.broadcasting_mul, [sums, np.asarray(alpha / size, x.dtype)], x.shape, x.dtype)
    base = g.elementwise(g.A.broadcasting_add, [scaled, np.asarray(k, x.dtype)], x.shape, x.dtype)
    power = g.elementwise(g.A.broadcasting_pow, [base, np.asarray(beta, x.dtype)], x.shape, x.dtype)
    return [g.elementwise(g.A.broadcasting_divide, [x, power], x.shape, x.dtype)]
