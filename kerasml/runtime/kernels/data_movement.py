"""Moving data without arithmetic: a strided slice (`strided_slice`) and constant padding that keeps
the input's memory layout (`pad_constant`, the layout-keeping fast path of `np.pad`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def pad_constant(
    x: np.ndarray, widths: Sequence[tuple[int, int]], value: float = 0.0, out: np.ndarray | None = None
) -> np.ndarray:
    """`np.pad(x, widths, constant_values=value)`, laid out in memory in x's own axis order.

    Convolutions hand on their (M, C, H, W) results as views of channels-last buffers; a padded
    copy that keeps channels innermost is written in long runs, and the next convolution reads
    it without transposing (np.pad returns C order, so both sides pay a strided transpose).
    Only the border is filled with `value`, the inside is copied once. `out`, when given, is the
    buffer to write (of the padded shape), reused between batches.
    """
    widths = [(int(a), int(b)) for a, b in widths]
    if any(a < 0 or b < 0 for a, b in widths):
        raise ValueError(f"negative padding {widths}")
    order = sorted(range(x.ndim), key=lambda axis: -abs(x.strides[axis]))  # outermost axis first
    shape = [n + a + b for n, (a, b) in zip(x.shape, widths)]
    if out is None:
        out = np.empty([shape[axis] for axis in order], dtype=x.dtype).transpose(np.argsort(order))
    elif out.shape != tuple(shape):
        raise ValueError(f"a buffer of shape {out.shape} cannot hold the padded {tuple(shape)}")
    inside = []
    for axis, ((before, after), n) in enumerate(zip(widths, x.shape)):
        lead = (slice(None),) * axis
        if before:
            out[lead + (slice(0, before),)] = value
        if after:
            out[lead + (slice(before + n, None),)] = value
        inside.append(slice(before, before + n))
    out[tuple(inside)] = x
    return out



def strided_slice(x: np.ndarray, begin, end, stride, begin_mask, end_mask, squeeze_mask, *, lead: int) -> np.ndarray:
    """TensorFlow-style strided slice of the axes after the first `lead` (which stay whole)."""
    index: list = [slice(None)] * lead
    for i, dim in enumerate(x.shape[lead:]):
        b = 0 if begin_mask[i] else int(begin[i])
        if squeeze_mask[i]:
            index.append(b)
            continue
        s = int(stride[i]) if len(stride) else 1
        e = None if end_mask[i] else int(end[i])
        if end_mask[i] and s < 0:
            e = None
        if begin_mask[i] and s < 0:
            b = dim - 1
        index.append(slice(b, e, s))
    return x[tuple(index)]
