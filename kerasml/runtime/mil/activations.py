"""ML Program activations and elementwise unary ops.

Each follows the MIL op's definition in coremltools (ops/defs/iOS15/activation.py,
elementwise_unary.py), boundaries included: thresholded_relu keeps x == alpha, clamped_relu clamps
after the negative slope, `round` rounds half to even, `inverse`/`log`/`rsqrt` add their epsilon.
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.mil.args import Args
from kerasml.runtime.mil.per_prediction import channel_param, per_prediction
from kerasml.runtime.registry import CONST, MIL_OPS, OPTIONAL_CONST, TENSOR, InputSpec


def _reused(args: Args, x) -> np.ndarray | None:
    """The step's own output buffer for a float32 batch (fresh arrays of this size cost page faults)."""
    if args.ws is None or not isinstance(x, np.ndarray) or x.dtype != np.float32:
        return None
    return args.ws.like("out", x)


def _unary(fn):
    return lambda args: [fn(np.asarray(args.f32("x")), args)]


def _alpha(a: Args, name: str = "alpha", default=None) -> np.float32:
    return np.float32(a.scalar(name) if default is None else a.scalar(name, default))


X = InputSpec(x=TENSOR)
X_EPSILON = X.but(epsilon=OPTIONAL_CONST)
X_ALPHA = X.but(alpha=CONST)
X_ALPHA_BETA = X.but(alpha=CONST, beta=CONST)

_UNARY = [
    (X, {
        "relu": lambda x, a: np.maximum(x, np.float32(0), out=_reused(a, x)),
        "relu6": lambda x, a: np.clip(x, np.float32(0), np.float32(6), out=_reused(a, x)),
        "tanh": lambda x, a: np.tanh(x),
        "exp": lambda x, a: np.exp(x),
        "sqrt": lambda x, a: np.sqrt(x),
        "abs": lambda x, a: np.abs(x),
        "square": lambda x, a: x * x,
        "softsign": lambda x, a: x / (1 + np.abs(x)),
        "softplus": lambda x, a: np.logaddexp(x, np.float32(0)),
        "silu": lambda x, a: x / (1 + np.exp(-x)),
        "erf": lambda x, a: kernels.erf(x),
        "ceil": lambda x, a: np.ceil(x),
        "floor": lambda x, a: np.floor(x),
        "round": lambda x, a: np.round(x),  # half to even, as coremltools' definition computes it
        "sign": lambda x, a: np.sign(x),
        "sin": lambda x, a: np.sin(x),
        "cos": lambda x, a: np.cos(x),
        "tan": lambda x, a: np.tan(x),
        "asin": lambda x, a: np.arcsin(x),
        "acos": lambda x, a: np.arccos(x),
        "atan": lambda x, a: np.arctan(x),
        "sinh": lambda x, a: np.sinh(x),
        "cosh": lambda x, a: np.cosh(x),
        "atanh": lambda x, a: np.arctanh(x),
        "exp2": lambda x, a: np.exp2(x),
        "logical_not": lambda x, a: np.logical_not(x),
        "sigmoid": lambda x, a: kernels.sigmoid(x),
    }),
    (X_EPSILON, {
        "rsqrt": lambda x, a: 1 / np.sqrt(x + _alpha(a, "epsilon", 1e-12)),
        "inverse": lambda x, a: 1 / (x + _alpha(a, "epsilon", 1e-4)),
        "log": lambda x, a: np.log(x + _alpha(a, "epsilon", 1e-45)),
    }),
    (X_ALPHA, {
        "leaky_relu": lambda x, a: np.where(x >= 0, x, x * _alpha(a)),
        "elu": lambda x, a: np.where(x > 0, x, _alpha(a) * np.expm1(np.minimum(x, 0))),
        "thresholded_relu": lambda x, a: np.where(x >= _alpha(a), x, np.float32(0)),
        "threshold": lambda x, a: np.maximum(x, _alpha(a)),
    }),
    (X_ALPHA_BETA, {
        "clip": lambda x, a: np.clip(x, a.scalar("alpha"), a.scalar("beta")),
        "linear_activation": lambda x, a: _alpha(a) * x + _alpha(a, "beta"),
        "sigmoid_hard": lambda x, a: np.clip(_alpha(a) * x + _alpha(a, "beta"), 0, 1),
        "scaled_tanh": lambda x, a: _alpha(a) * np.tanh(_alpha(a, "beta") * x),
        "clamped_relu": lambda x, a: np.minimum(np.where(x >= 0, x, _alpha(a) * x), _alpha(a, "beta")),
    }),
    (X.but(dtype=CONST), {"cast": lambda x, a: x}),  # the engine casts every result to the declared dtype
]
for _inputs, _family in _UNARY:
    for _name, _fn in _family.items():
        MIL_OPS.add(_name, _unary(_fn), inputs=_inputs)


@MIL_OPS.register("gelu", inputs=X.but(mode=OPTIONAL_CONST))
def gelu(args: Args) -> list:
    mode = args.scalar("mode", "EXACT")
    if mode not in kernels.GELU_MODES:
        raise args.unsupported(f"gelu mode '{mode}'")
    return [kernels.gelu(args.f32("x"), mode)]


@MIL_OPS.register("prelu", inputs=X_ALPHA)
@per_prediction
def prelu(args: Args) -> list:
    x = np.asarray(args.f32("x"))
    alpha = channel_param(args.f32("alpha"), x, "alpha")
    return [np.where(x > 0, x, x * alpha)]


@MIL_OPS.register("softplus_parametric", inputs=X_ALPHA_BETA)
@per_prediction
def softplus_parametric(args: Args) -> list:
    x = np.asarray(args.f32("x"))
    alpha = channel_param(args.f32("alpha"), x, "alpha")
    beta = channel_param(args.f32("beta"), x, "beta")
    return [alpha * np.logaddexp(np.float32(0), beta * x)]
