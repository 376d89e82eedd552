"""Convolutions of (M, C, H, W) batches: `conv2d`, its depthwise fast path, `conv_transpose2d`,
and TensorFlow's 'same' padding (`same_pads`).

`conv2d` takes and returns arrays in Core ML's (M, C, H, W) layout but computes in NHWC: the
image-to-column matrix then has the channels innermost, one BLAS matmul does the whole batch, and
the result goes back as a transposed *view*, so the next layer's `transpose(0, 2, 3, 1)` is free.
`depthwise_conv2d` is the layout-keeping fast path `conv2d` takes for one input channel per group.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kerasml.runtime.kernels.data_movement import pad_constant
from kerasml.runtime.kernels.workspace import Workspace, buffer


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1, *, top_heavy: bool = False) -> tuple[int, int]:
    """TensorFlow-style 'same' padding: output ceil(size / stride); the odd pixel goes bottom/right."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    small = total // 2
    return (total - small, small) if top_heavy else (small, total - small)


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    groups: int = 1,
    ws: Workspace | None = None,
) -> np.ndarray:
    """Grouped, strided, dilated 2-D cross-correlation; `w` is (C_out, C_in / groups, kH, kW)."""
    m, c, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    if c != cin_g * groups:
        raise ValueError(f"input has {c} channels, the weights expect {cin_g * groups}")
    if cout % groups:
        raise ValueError(f"{cout} output channels do not split into {groups} groups")
    (sh, sw), (dh, dw) = stride, dilation
    pt, pb, pl, pr = pads
    xh = x.transpose(0, 2, 3, 1)
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    oh, ow = (h + pt + pb - eh) // sh + 1, (wd + pl + pr - ew) // sw + 1
    if oh <= 0 or ow <= 0:
        raise ValueError(f"a {kh}x{kw} kernel does not fit a {h}x{wd} input")
    out = buffer(ws, "out", (m, oh, ow, cout))
    if cin_g == 1 and groups > 1:  # depthwise: one multiply-add per tap instead of a matmul per channel
        depthwise_conv2d(
            xh, w, bias, out, stride=(sh, sw), dilation=(dh, dw), pads=pads,
            scratch=None if ws is None else ws.empty,
        )
        return out.transpose(0, 3, 1, 2)
    if pt or pb or pl or pr:
        xh = np.pad(xh, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    flat_out = out.reshape(m * oh * ow, cout)
    cout_g = cout // groups
    if groups == 1 and x.flags.c_contiguous and c * kh * kw <= 64:
        return _conv_k_major(x, w, bias, (sh, sw), (dh, dw), pads, (oh, ow), out, ws)
    if kh == kw == 1 and sh == sw == 1 and groups == 1:
        np.matmul(xh.reshape(m * oh * ow, c), w.reshape(cout, c).T, out=flat_out)
        return _finish(out, bias)
    win = sliding_window_view(xh, (eh, ew), axis=(1, 2))  # (m, H', W', C, eh, ew)
    win = win[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, :, ::dh, ::dw]
    win = win.transpose(0, 1, 2, 4, 5, 3)  # channels innermost: the im2col copy reads runs of C
    cols = buffer(ws, "cols", (m, oh, ow, kh, kw, cin_g))
    for g in range(groups):
        np.copyto(cols, win[..., g * cin_g : (g + 1) * cin_g])
        flat_cols = cols.reshape(m * oh * ow, kh * kw * cin_g)
        wg = w[g * cout_g : (g + 1) * cout_g].transpose(2, 3, 1, 0).reshape(kh * kw * cin_g, cout_g)
        if groups == 1:
            np.matmul(flat_cols, wg, out=flat_out)
        else:
            flat_out[:, g * cout_g : (g + 1) * cout_g] = flat_cols @ wg
    return _finish(out, bias)


def _conv_k_major(x, w, bias, stride, dilation, pads, out_hw, out, ws) -> np.ndarray:
    """im2col for inputs stored channel-first with few channels (the first layer of a network):
    the column matrix is built transposed, one kernel tap per row, each row one strided copy of
    whole image rows, and an extra row of ones carries the bias into the same matmul."""
    m, c = x.shape[:2]
    cout, _, kh, kw = w.shape
    (sh, sw), (dh, dw), (oh, ow) = stride, dilation, out_hw
    pt, pb, pl, pr = pads
    if pt or pb or pl or pr:
        widths = ((0, 0), (0, 0), (pt, pb), (pl, pr))
        padded = buffer(ws, "padded", (m, c, x.shape[2] + pt + pb, x.shape[3] + pl + pr))
        x = pad_constant(x, widths, 0.0, out=padded)
    k = c * kh * kw
    cols = buffer(ws, "cols_t", (k + 1, m * oh * ow))
    taps = cols[:k].reshape(c, kh, kw, m, oh, ow)
    for i in range(kh):
        for j in range(kw):
            rows = x[:, :, i * dh : i * dh + (oh - 1) * sh + 1 : sh, j * dw : j * dw + (ow - 1) * sw + 1 : sw]
            np.copyto(taps[:, i, j], rows.transpose(1, 0, 2, 3))
    cols[k] = 1.0
    weights = np.empty((k + 1, cout), dtype=np.float32)
    weights[:k] = w.reshape(cout, k).T
    weights[k] = 0.0 if bias is None else bias
    np.matmul(cols.T, weights, out=out.reshape(m * oh * ow, cout))
    return out.transpose(0, 3, 1, 2)


def _finish(out: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    if bias is not None:
        out += bias
    return out.transpose(0, 3, 1, 2)



# -- depthwise: the layout-keeping fast path of conv2d -------------------------------------------
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



# -- transposed convolution --------------------------------------------------------------------------
def conv_transpose2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    crop: tuple[int, int, int, int] = (0, 0, 0, 0),
    out_size: tuple[int, int] | None = None,
    groups: int = 1,
) -> np.ndarray:
    """Transposed 2-D convolution (the gradient of `conv2d` with respect to its input).

    x (M, C_in, H, W); w (C_in, C_out / groups, kH, kW). The full result is
    ((H - 1) * s + d (kH - 1) + 1) rows; `crop` (top, bottom, left, right) removes rows and columns
    from its edges. `out_size` (rows, columns), when given, instead takes that many from (top, left)
    of `crop`, extending with zeros past the full result. Returns (M, C_out, rows, columns).
    """
    m, c_in, h, wd = x.shape
    if w.shape[0] != c_in:
        raise ValueError(f"input has {c_in} channels, the weights expect {w.shape[0]}")
    if c_in % groups:
        raise ValueError(f"{c_in} input channels do not split into {groups} groups")
    _, cout_g, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    full_h, full_w = (h - 1) * sh + dh * (kh - 1) + 1, (wd - 1) * sw + dw * (kw - 1) + 1
    cin_g = c_in // groups
    out = np.zeros((m, groups * cout_g, full_h, full_w), np.float32)
    xh = x.transpose(0, 2, 3, 1)  # (M, H, W, C_in): one matmul per group gives every tap at once
    for g in range(groups):
        wg = w[g * cin_g : (g + 1) * cin_g].reshape(cin_g, cout_g * kh * kw)
        taps = (xh[..., g * cin_g : (g + 1) * cin_g] @ wg).reshape(m, h, wd, cout_g, kh, kw)
        block = out[:, g * cout_g : (g + 1) * cout_g]
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + (h - 1) * sh + 1, sh)
                cols = slice(j * dw, j * dw + (wd - 1) * sw + 1, sw)
                block[:, :, rows, cols] += taps[..., i, j].transpose(0, 3, 1, 2)
    top, bottom, left, right = crop
    if out_size is None:
        out_size = (full_h - top - bottom, full_w - left - right)
    oh, ow = out_size
    if oh <= 0 or ow <= 0:
        raise ValueError(f"cropping {crop} leaves nothing of a {full_h}x{full_w} transposed convolution")
    result = np.zeros((m, out.shape[1], oh, ow), np.float32)
    src = out[:, :, top : top + oh, left : left + ow]
    result[:, :, : src.shape[2], : src.shape[3]] = src
    if bias is not None:
        result += bias.reshape(-1, 1, 1)
    return result

