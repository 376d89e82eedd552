"""Normalisation over chosen axes (`layer_norm`), as Core ML and Keras both define it."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def layer_norm(
    x: np.ndarray, axes: Sequence[int], gamma: np.ndarray | None, beta: np.ndarray | None, eps: float
) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) * gamma + beta over `axes` (biased variance, eps inside the
    root, as Core ML and Keras both define it); gamma and beta broadcast against x's trailing axes."""
    x = x.astype(np.float32, copy=False)
    axes = tuple(axes)
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=axes, keepdims=True)
    y = centred / np.sqrt(var + np.float32(eps))
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y.astype(np.float32, copy=False)
