"""Reductions NumPy has no stable form of: `log_sum_exp`."""

from __future__ import annotations

import numpy as np


def log_sum_exp(x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """log(sum(exp(x))) over `axis`, shifted by the maximum so exp never overflows."""
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)  # all -inf (or inf) along an axis: no shift
    out = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)
