"""Kernels that keep the channels-last layout and reuse buffers (the speed-critical paths).

Depthwise convolution over a strided view of whole padded rows, constant padding that keeps the
layout convolutions hand on, and elementwise chains applied in place block by block while the
block is in cache. Split from kernels.py, whose functions allocate their results.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

# -- depthwise convolution ---------------------------------------------------------------------------
def depthwise_conv2d(
    xh: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    out: np.ndarray,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    scratch: Callable[[str, tuple[int, ...]], np.ndarray] | None = None,
) -> np.ndarray:
    """Depthwise 2-D cross-correlation (one input channel per group) in NHWC, written into `out`.

    xh (M, H, W, C_in); w (C_out, 1, kH, kW) with C_out = C_in * multiplier (output channel o reads
    input channel o // multiplier); out (M, oH, oW, C_out).

    An output row is oW * C values in a row, and the input it reads for kernel tap (i, j) is also
    one run of oW * C values (the columns and channels of a padded input row, shifted by j columns);
    so a read-only strided view (M, oH, kH, kW, oW * C) holds every tap's run, and one `einsum`
    against the taps' weights (tiled oW times) multiplies and sums them in a single pass, with long
    inner loops even when there are few channels. A per-channel im2col or matmul would copy every
    input kH * kW times or run C tiny products; a strided convolution first splits the columns into
    `stride` phases, each contiguous, and sums one einsum per phase. `scratch(key, shape)` gives
    float32 buffers to reuse between batches (fresh ones cost a page fault per 4 KiB).
    """
    m, _, _, c_in = xh.shape
    c_out, _, kh, kw = w.shape
    if c_out % c_in:
        raise ValueError(f"{c_out} output channels are not a multiple of {c_in} input channels")
    if c_out != c_in:
        xh = xh.repeat(c_out // c_in, axis=3)
    (sh, sw), (dh, dw) = stride, dilation
    _, oh, ow, _ = out.shape
    row = ow * c_out
    taps = np.empty((kh, kw, ow, c_out), np.float32)
    taps[...] = np.asarray(w, np.float32)[:, 0].transpose(1, 2, 0)[:, :, None, :]
    taps = taps.reshape(kh, kw, row)
    flat = out.reshape(m, oh, row)
    phases = _column_phases(xh, pads, sw, scratch)
    done = False
    for r, phase in enumerate(phases):
        columns = [j for j in range(kw) if (j * dw) % sw == r]  # the kernel columns this phase feeds
        if not columns:
            continue
        offsets = [(j * dw) // sw for j in columns]  # evenly spaced: consecutive columns differ by sw / gcd
        step = offsets[1] - offsets[0] if len(offsets) > 1 else 0
        s_n, s_h, s_w, item = phase.strides
        if item != phase.itemsize or s_w != c_out * item:
            raise AssertionError("column phases must have columns and channels contiguous")
        windows = np.lib.stride_tricks.as_strided(
            phase[:, :, offsets[0] :], shape=(m, oh, kh, len(columns), row),
            strides=(s_n, sh * s_h, dh * s_h, step * s_w, item), writeable=False,
        )
        if not done:
            np.einsum("nyijk,ijk->nyk", windows, taps[:, columns], out=flat)
            done = True
        else:
            flat += np.einsum("nyijk,ijk->nyk", windows, taps[:, columns])
    if bias is not None:
        flat += np.tile(np.asarray(bias, np.float32), ow)
    return out


def _column_phases(xh: np.ndarray, pads: tuple[int, int, int, int], stride: int, scratch=None) -> list[np.ndarray]:
    """The zero-padded images (M, H', W', C) split by column into `stride` phases, phase r holding
    padded columns r, r + stride, ...: padding and splitting in one copy, each phase with its
    columns and channels contiguous. An unpadded, unstrided channels-last input is used as it is."""
    pt, pb, pl, pr = pads
    m, h, w, c = xh.shape
    item = xh.itemsize
    if stride == 1 and not any(pads) and xh.dtype == np.float32 and xh.strides[2:] == (c * item, item):
        return [xh]
    hp, wp = h + pt + pb, w + pl + pr
    phases = []
    for r in range(stride):
        shape = (m, hp, len(range(r, wp, stride)), c)
        phase = np.empty(shape, np.float32) if scratch is None else scratch(f"phase{r}", shape)
        first_input = (r - pl) % stride  # the first input column whose padded column is in this phase
        at = (pl + first_input - r) // stride
        count = len(range(first_input, w, stride))
        phase[:, :pt], phase[:, pt + h :] = 0, 0
        phase[:, pt : pt + h, :at], phase[:, pt : pt + h, at + count :] = 0, 0
        phase[:, pt : pt + h, at : at + count] = xh[:, :, first_input::stride]
        phases.append(phase)
    return phases


# -- padding -----------------------------------------------------------------------------------------
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
