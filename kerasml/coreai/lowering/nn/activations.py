"""NeuralNetwork activations: `activation` (every NonlinearityType), `clampedReLU`, `erf`, `gelu`.

Formulas and boundaries are Core ML's, as kerasml's runtime computes them (runtime/nn/activations.py):
leaky ReLU, PReLU and ELU take x >= 0 as the positive side, thresholded ReLU keeps x == alpha, PReLU
and parametric softplus apply per channel (axis -3). Core AI has relu, sigmoid, tanh, erf, gelu, exp,
log and abs; the rest are composed. Where the runtime writes where(x >= 0, x, f(x)) with f(0) = 0,
the lowering writes max(x, 0) + f(min(x, 0)): the same value on both sides, one select fewer.
"""

from __future__ import annotations

import numpy as np

from kerasml.coreai.lowering.nn import arith
from kerasml.coreai.lowering.nn.arith import add, c, div, fn, maximum, minimum, mul, sub
from kerasml.coreai.lowering.nn.layer import Layer
from kerasml.coreai.lowering.registry import NN_LOWERINGS, lowers

_KINDS = ("ReLU leakyReLU thresholdedReLU PReLU sigmoid tanh linear scaledTanh sigmoidHard ELU softsign softplus "
          "parametricSoftplus")


def _per_channel(layer: Layer, params, what: str, x) -> np.ndarray:
    """A PReLU / parametric softplus parameter: 1 or C values, as (C, 1, 1)."""
    count = len(params.floatValue) or len(params.float16Value) // 2
    if count == 0:
        raise ValueError(f"{what} has no values")
    if x.rank < 3 or count not in (1, x.shape[-3]):
        raise ValueError(f"{count} {what} values for an input of shape {x.shape}")
    return layer.vector(params, count, what).reshape(-1, 1, 1)


def _split(g, x, negative):
    """max(x, 0) + negative(min(x, 0)), for an f with f(0) = 0."""
    return add(g, maximum(g, x, c(0)), negative(minimum(g, x, c(0))))


def activation_value(layer: Layer, p, x):
    """The activation an ActivationParams message `p` describes, of x."""
    g = layer.g
    kind = p.WhichOneof("NonlinearityType")
    if kind == "ReLU":
        return fn(g, "relu", x)
    if kind == "leakyReLU":
        return _split(g, x, lambda neg: mul(g, neg, c(p.leakyReLU.alpha)))
    if kind == "thresholdedReLU":   # x < alpha → 0, else x
        return arith.where(g, arith.greater(g, c(p.thresholdedReLU.alpha), x), c(0), x)
    if kind == "PReLU":
        alpha = _per_channel(layer, p.PReLU.alpha, "PReLU alpha", x)
        return _split(g, x, lambda neg: mul(g, neg, alpha))
    if kind == "sigmoid":
        return fn(g, "sigmoid", x)
    if kind == "tanh":
        return fn(g, "tanh", x)
    if kind == "linear":
        return add(g, mul(g, x, c(p.linear.alpha)), c(p.linear.beta))
    if kind == "scaledTanh":
        return mul(g, fn(g, "tanh", mul(g, x, c(p.scaledTanh.beta))), c(p.scaledTanh.alpha))
    if kind == "sigmoidHard":
        hard = add(g, mul(g, x, c(p.sigmoidHard.alpha)), c(p.sigmoidHard.beta))
        return minimum(g, maximum(g, hard, c(0)), c(1))
    if kind == "ELU":
        return _split(g, x, lambda neg: mul(g, sub(g, fn(g, "exp", neg), c(1)), c(p.ELU.alpha)))
    if kind == "softsign":
        return div(g, x, add(g, fn(g, "abs_", x), c(1)))
    if kind == "softplus":
        return arith.softplus(g, x)
    if kind == "parametricSoftplus":
        alpha = _per_channel(layer, p.parametricSoftplus.alpha, "parametric softplus alpha", x)
        beta = _per_channel(layer, p.parametricSoftplus.beta, "parametric softplus beta", x)
        return mul(g, arith.softplus(g, mul(g, x, beta)), alpha)
    raise layer.unsupported(f"the {kind or 'unset'} activation")


@lowers(NN_LOWERINGS, "activation", params=_KINDS)
def activation(layer: Layer) -> list:
    return [activation_value(layer, layer.p, layer.x())]


@lowers(NN_LOWERINGS, "clampedReLU", params="alpha beta")
def clamped_relu(layer: Layer) -> list:
    g, x, p = layer.g, layer.x(), layer.p
    leaky = _split(g, x, lambda neg: mul(g, neg, c(p.alpha)))
    return [minimum(g, leaky, c(p.beta))]


@lowers(NN_LOWERINGS, "erf", params="")
def erf(layer: Layer) -> list:
    return [fn(layer.g, "erf", layer.x())]


@lowers(NN_LOWERINGS, "gelu", params="mode")
def gelu(layer: Layer) -> list:
    g, x = layer.g, layer.x()
    mode = layer.p.mode
    if mode == 0:      # EXACT: 0.5 x (1 + erf(x / sqrt 2))
        return [g.unary(g.A.gelu, x)]
    if mode == 1:      # TANH_APPROXIMATION
        return [g.unary(lambda v: g.A.gelu(v, approximate="tanh"), x)]
    if mode == 2:      # SIGMOID_APPROXIMATION: x sigmoid(1.702 x)
        return [mul(g, x, fn(g, "sigmoid", mul(g, x, c(1.702))))]
    raise layer.unsupported(f"gelu mode {mode}")
