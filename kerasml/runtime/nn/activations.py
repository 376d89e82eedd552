"""NeuralNetwork activation layers: `activation` (every `ActivationParams` kind), `clampedReLU`,
`erf`, `gelu`, `softmax` / `softmaxND`, and the activations recurrent layers name. Formulas and boundaries are Core ML's
(NeuralNetwork.proto), not Keras': thresholded ReLU keeps x == alpha, leaky ReLU and ELU take
x >= 0 as the positive side, PReLU and parametric softplus apply per channel along axis -3."""

from __future__ import annotations

from typing import Callable

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.nn import weights
from kerasml.runtime.nn.common import Run, batch_axis, channel_axis, unsupported
from kerasml.runtime.registry import NN_LAYERS

Fn = Callable[[np.ndarray], np.ndarray]


def _per_channel(params, name: str, what: str) -> np.ndarray:
    """A PReLU / parametric softplus parameter: 1 or C values, returned as a (C, 1, 1) array."""
    count = len(params.floatValue) or len(params.float16Value) // 2
    if count == 0:
        raise ValueError(f"layer '{name}': {what} has no values")
    return weights.vector(params, count, f"layer '{name}' {what}").reshape(-1, 1, 1)


def _channelwise(fn, *params: np.ndarray) -> Fn:
    def apply(x: np.ndarray) -> np.ndarray:
        if x.ndim < 4:  # the leading axis of predictions plus rank >= 3
            raise ValueError(f"needs an input of rank 3 or more (C, H, W), got shape {x.shape[1:]}")
        for p in params:
            if p.shape[0] not in (1, x.shape[-3]):
                raise ValueError(f"{p.shape[0]} parameter values for {x.shape[-3]} channels")
        return fn(x, *params)

    return apply


def activation_fn(p, name: str) -> Fn:
    """The elementwise function an `ActivationParams` message describes."""
    kind = p.WhichOneof("NonlinearityType")
    if kind == "ReLU":
        return lambda x: np.maximum(x, 0)
    if kind == "leakyReLU":
        a = np.float32(p.leakyReLU.alpha)
        return lambda x: np.where(x >= 0, x, x * a)
    if kind == "thresholdedReLU":
        a = np.float32(p.thresholdedReLU.alpha)
        return lambda x: np.where(x >= a, x, 0)  # Core ML keeps x == alpha (Keras' layer does not)
    if kind == "PReLU":
        alpha = _per_channel(p.PReLU.alpha, name, "PReLU alpha")
        return _channelwise(lambda x, a: np.where(x >= 0, x, x * a), alpha)
    if kind == "sigmoid":
        return kernels.sigmoid
    if kind == "tanh":
        return np.tanh
    if kind == "linear":
        a, b = np.float32(p.linear.alpha), np.float32(p.linear.beta)
        return lambda x: a * x + b
    if kind == "scaledTanh":
        a, b = np.float32(p.scaledTanh.alpha), np.float32(p.scaledTanh.beta)
        return lambda x: a * np.tanh(b * x)
    if kind == "sigmoidHard":
        a, b = np.float32(p.sigmoidHard.alpha), np.float32(p.sigmoidHard.beta)
        return lambda x: np.clip(a * x + b, 0, 1)
    if kind == "ELU":
        a = np.float32(p.ELU.alpha)
        return lambda x: np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0)))
    if kind == "softsign":
        return lambda x: x / (1 + np.abs(x))
    if kind == "softplus":
        return lambda x: np.logaddexp(x, np.float32(0))
    if kind == "parametricSoftplus":
        alpha = _per_channel(p.parametricSoftplus.alpha, name, "parametric softplus alpha")
        beta = _per_channel(p.parametricSoftplus.beta, name, "parametric softplus beta")
        return _channelwise(lambda x, a, b: a * np.logaddexp(b * x, np.float32(0)), alpha, beta)
    raise unsupported(name, "activation", f"the {kind or 'unset'} activation")


# Recurrent layers write their activations as empty messages (coremltools' builder does): an unset
# parameter means the function's standard form, which is what Core ML computes for them.
_RECURRENT_DEFAULTS = {"linear": (1.0, 0.0), "scaledTanh": (1.0, 1.0), "sigmoidHard": (0.2, 0.5)}


def recurrent_activation_fn(p, name: str, kind_name: str) -> Fn:
    kind = p.WhichOneof("NonlinearityType")
    if kind in ("sigmoid", "tanh", "ReLU"):
        return activation_fn(p, name)
    if kind in _RECURRENT_DEFAULTS:
        msg = getattr(p, kind)
        a, b = (msg.alpha, msg.beta) if (msg.alpha or msg.beta) else _RECURRENT_DEFAULTS[kind]
        a, b = np.float32(a), np.float32(b)
        if kind == "linear":
            return lambda x: a * x + b
        if kind == "scaledTanh":
            return lambda x: a * np.tanh(b * x)
        return lambda x: np.clip(a * x + b, 0, 1)
    raise unsupported(name, kind_name, f"the {kind or 'unset'} activation inside a recurrent layer")


@NN_LAYERS.register("activation")
def compile_activation(layer, name: str) -> Run:
    fn = activation_fn(layer.activation, name)
    if layer.activation.WhichOneof("NonlinearityType") == "ReLU":
        ws = kernels.Workspace()  # the most common layer after convolutions: reuse its buffer

        def relu(inputs):
            return [np.maximum(inputs[0], 0, out=ws.like("out", inputs[0]))]

        relu.in_place = lambda x: np.maximum(x, 0, out=x)  # see NeuralNetworkEngine._fuse
        relu.floor = 0.0
        return relu
    run = lambda inputs: [np.asarray(fn(inputs[0]), np.float32)]  # noqa: E731
    if layer.activation.WhichOneof("NonlinearityType") == "linear":  # ReLU6 converts to relu, -x, max, -x
        a, b = np.float32(layer.activation.linear.alpha), np.float32(layer.activation.linear.beta)
        run.in_place = lambda x: np.add(np.multiply(x, a, out=x), b, out=x)
    return run


@NN_LAYERS.register("clampedReLU")
def compile_clampedReLU(layer, name: str) -> Run:
    a, b = np.float32(layer.clampedReLU.alpha), np.float32(layer.clampedReLU.beta)
    return lambda inputs: [np.minimum(np.where(inputs[0] >= 0, inputs[0], a * inputs[0]), b)]


@NN_LAYERS.register("gelu")
def compile_gelu(layer, name: str) -> Run:
    modes = {0: "EXACT", 1: "TANH_APPROXIMATION", 2: "SIGMOID_APPROXIMATION"}
    mode = modes.get(layer.gelu.mode)
    if mode is None:
        raise unsupported(name, "gelu", f"gelu mode {layer.gelu.mode}")
    return lambda inputs: [kernels.gelu(inputs[0], mode)]


NN_LAYERS.add("erf", lambda layer, name: lambda inputs: [kernels.erf(inputs[0])])


@NN_LAYERS.register("softmax")
def compile_softmax(layer, name: str) -> Run:
    return lambda inputs: [kernels.softmax(inputs[0], channel_axis(inputs[0]))]


@NN_LAYERS.register("softmaxND")
def compile_softmaxND(layer, name: str) -> Run:
    axis = layer.softmaxND.axis
    return lambda inputs: [kernels.softmax(inputs[0], batch_axis(axis, inputs[0]))]
