"""Activations and special functions (`sigmoid`, `erf`, `gelu`, `softmax`), and their
layout-keeping fast path: elementwise chains applied in place, block by block (`apply_in_place`)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from kerasml.runtime.errors import UnsupportedModelError


def sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of -|x| never overflows: the two branches give the same value where both are finite
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.float32, copy=False)


def erf(x: np.ndarray) -> np.ndarray:
    """The Gauss error function, elementwise (scipy's, in float32)."""
    try:
        from scipy.special import erf as scipy_erf
    except ImportError:  # scipy is a dependency; a stripped environment gets one clear line
        raise UnsupportedModelError("erf needs scipy; install it with `pip install scipy`") from None
    return scipy_erf(np.asarray(x, np.float32)).astype(np.float32, copy=False)


GELU_MODES = ("EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION")


def gelu(x: np.ndarray, mode: str = "EXACT") -> np.ndarray:
    """GELU as Core ML defines its three modes (NeuralNetwork `GeluLayerParams`, MIL `gelu`):
    EXACT 0.5 x (1 + erf(x / sqrt 2)); TANH_APPROXIMATION 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)));
    SIGMOID_APPROXIMATION x sigmoid(1.702 x)."""
    x = np.asarray(x, np.float32)
    if mode == "EXACT":
        return (0.5 * x * (1 + erf(x / np.float32(np.sqrt(2))))).astype(np.float32)
    if mode == "TANH_APPROXIMATION":
        inner = np.float32(np.sqrt(2 / np.pi)) * (x + np.float32(0.044715) * x**3)
        return (0.5 * x * (1 + np.tanh(inner))).astype(np.float32)
    if mode == "SIGMOID_APPROXIMATION":
        return (x * sigmoid(np.float32(1.702) * x)).astype(np.float32)
    raise UnsupportedModelError(f"gelu mode {mode!r} is not one of {', '.join(GELU_MODES)}")



def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)



# -- fused elementwise chains ------------------------------------------------------------------------
_IN_PLACE_BLOCK = 1 << 14  # values per block: a block stays in L1/L2 cache through the whole chain


def apply_in_place(y: np.ndarray, fns: Sequence[Callable[[np.ndarray], np.ndarray]]) -> np.ndarray:
    """Each of `fns` (elementwise, position-independent, writing into its argument) applied to y in
    turn, block by block: a chain such as ReLU6 written as four layers (relu, negate, threshold,
    negate) then reads and writes y from memory once instead of four times. y may be any dense
    layout (a transposed view of a channels-last buffer is walked in memory order)."""
    flat = y.ravel(order="K")
    if not np.shares_memory(flat, y) or flat.size <= _IN_PLACE_BLOCK:
        for fn in fns:
            fn(y)
        return y
    for start in range(0, flat.size, _IN_PLACE_BLOCK):
        block = flat[start : start + _IN_PLACE_BLOCK]
        for fn in fns:
            fn(block)
    return y
