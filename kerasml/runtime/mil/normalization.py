"""ML Program normalisation ops: softmax, batch_norm, layer_norm, instance_norm, l2_norm and
local_response_norm, as coremltools' MIL definitions (ops/defs/iOS15/normalization.py)
state them: biased variance, epsilon inside the square root, gamma/beta per channel (axis 1) or,
for layer_norm, shaped like the normalised axes.
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.mil.args import Args, batch_axis
from kerasml.runtime.mil.per_prediction import channel_param, per_prediction
from kerasml.runtime.registry import CONST, MIL_OPS, OPTIONAL_CONST, TENSOR, InputSpec


@MIL_OPS.register("softmax", inputs=InputSpec(x=TENSOR, axis=OPTIONAL_CONST))
def softmax(args: Args) -> list:
    x = args.f32("x")
    return [kernels.softmax(x, batch_axis(args.scalar("axis", -1), x, args.batched("x")))]


@MIL_OPS.register("batch_norm", inputs=InputSpec(x=TENSOR, mean=CONST, variance=CONST, gamma=OPTIONAL_CONST,
                                                beta=OPTIONAL_CONST, epsilon=OPTIONAL_CONST))
def batch_norm(args: Args) -> list:
    x, b = args.f32("x"), args.batched("x")
    mean, var = args.f32("mean"), args.f32("variance")
    gamma, beta = args.f32("gamma", None), args.f32("beta", None)
    eps = np.float32(args.scalar("epsilon", 1e-5))
    scale = (1 / np.sqrt(var + eps)) * (gamma if gamma is not None else 1)
    shift = (beta if beta is not None else 0) - mean * scale
    tail = (1,) * (x.ndim - b - 2)  # channels are axis 1 of each prediction
    return [x * scale.reshape((-1,) + tail) + np.reshape(shift, (-1,) + tail)]


def _eps(args: Args, default: float) -> np.float32:
    return np.float32(args.scalar("epsilon", default))


@MIL_OPS.register("layer_norm", inputs=InputSpec(x=TENSOR, axes=OPTIONAL_CONST, gamma=OPTIONAL_CONST, beta=OPTIONAL_CONST,
                                                epsilon=OPTIONAL_CONST))
@per_prediction
def layer_norm(args: Args) -> list:
    x = np.asarray(args.f32("x"))
    axes = args.ints("axes", None)
    axes = list(range(x.ndim)) if axes is None else [a + x.ndim if a < 0 else a for a in axes]
    shape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]  # gamma/beta over the normalised axes
    gamma, beta = args.f32("gamma", None), args.f32("beta", None)
    gamma = None if gamma is None else np.asarray(gamma, np.float32).reshape(shape)
    beta = None if beta is None else np.asarray(beta, np.float32).reshape(shape)
    return [kernels.layer_norm(x, axes, gamma, beta, float(_eps(args, 1e-5)))]


@MIL_OPS.register("instance_norm",
                  inputs=InputSpec(x=TENSOR, gamma=OPTIONAL_CONST, beta=OPTIONAL_CONST, epsilon=OPTIONAL_CONST))
@per_prediction
def instance_norm(args: Args) -> list:
    x = np.asarray(args.f32("x"))
    y = kernels.layer_norm(x, range(2, x.ndim), None, None, float(_eps(args, 1e-5)))
    gamma, beta = args.f32("gamma", None), args.f32("beta", None)
    if gamma is not None:
        y = y * channel_param(gamma, x, "gamma")
    if beta is not None:
        y = y + channel_param(beta, x, "beta")
    return [y]


@MIL_OPS.register("l2_norm", inputs=InputSpec(x=TENSOR, epsilon=OPTIONAL_CONST))
@per_prediction
def l2_norm(args: Args) -> list:
    """Over the last three axes (all of them for rank <= 3); leading axes are batches."""
    x = np.asarray(args.f32("x"))
    axes = tuple(range(max(0, x.ndim - 3), x.ndim))
    return [x / np.sqrt(np.sum(x * x, axis=axes, keepdims=True) + _eps(args, 1e-6))]


@MIL_OPS.register("local_response_norm", inputs=InputSpec(x=TENSOR, size=CONST, alpha=OPTIONAL_CONST, beta=OPTIONAL_CONST,
                                                         k=OPTIONAL_CONST))
@per_prediction
def local_response_norm(args: Args) -> list:
    """x / (k + alpha / size * sum of x^2 over channels c - size // 2 ... c + (size - 1) // 2)^beta."""
    x = np.asarray(args.f32("x"))
    size = int(args.scalar("size"))
    alpha, beta, k = (np.float32(args.scalar(n, d)) for n, d in (("alpha", 1e-4), ("beta", 0.75), ("k", 1.0)))
    sq = np.pad(x * x, [(0, 0), (size // 2, (size - 1) // 2)] + [(0, 0)] * (x.ndim - 2))
    window = np.cumsum(sq, axis=1, dtype=np.float64)
    window = np.concatenate([np.zeros_like(window[:, :1]), window], axis=1)
    sums = (window[:, size:] - window[:, :-size]).astype(np.float32)
    return [x / (k + alpha / size * sums) ** beta]
