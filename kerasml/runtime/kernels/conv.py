"""Vectorised NumPy kernels shared by the NeuralNetwork layers and the ML Program ops.

Every kernel takes and returns arrays in Core ML's (M, C, H, W) layout, but computes in NHWC: the
image-to-column matrix then has the channels innermost, one BLAS matmul does the whole batch, and
the result goes back as a transposed *view*, so the next layer's `transpose(0, 2, 3, 1)` is free.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kerasml.runtime import layout_kernels


class Workspace:
    """Output buffers a layer keeps between batches.

    Fresh arrays of tens of megabytes come from `mmap` and cost a page fault per 4 KiB on first
    write, as much as the arithmetic itself; reusing them makes batch after batch fault-free. A
    buffer is only valid until the layer runs again, so engines copy what they return.
    """

    def __init__(self) -> None:
        self._local = threading.local()  # one set of buffers per thread: engines run batches in parallel

    @property
    def _buffers(self) -> dict[str, np.ndarray]:
        buffers = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = self._local.buffers = {}
        return buffers

    def empty(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        buffers = self._buffers
        buf = buffers.get(key)
        if buf is None or buf.shape != tuple(shape):
            buf = buffers[key] = np.empty(shape, dtype=np.float32)
        return buf

    def like(self, key: str, x: np.ndarray) -> np.ndarray:
        """A float32 buffer with `x`'s shape and memory layout (so elementwise writes stream)."""
        buffers = self._buffers
        buf = buffers.get(key)
        if buf is None or buf.shape != x.shape or buf.strides != x.strides or x.dtype != np.float32:
            buf = buffers[key] = np.empty_like(x, dtype=np.float32)
        return buf


def _scratch(ws: "Workspace | None", key: str, shape: tuple[int, ...]) -> np.ndarray:
    return ws.empty(key, shape) if ws is not None else np.empty(shape, dtype=np.float32)


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
    out = _scratch(ws, "out", (m, oh, ow, cout))
    if cin_g == 1 and groups > 1:  # depthwise: one multiply-add per tap instead of a matmul per channel
        layout_kernels.depthwise_conv2d(
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
    cols = _scratch(ws, "cols", (m, oh, ow, kh, kw, cin_g))
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
        padded = _scratch(ws, "padded", (m, c, x.shape[2] + pt + pb, x.shape[3] + pl + pr))
        x = layout_kernels.pad_constant(x, widths, 0.0, out=padded)
    k = c * kh * kw
    cols = _scratch(ws, "cols_t", (k + 1, m * oh * ow))
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


def pool2d(
    x: np.ndarray,
    kind: str,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    out_size: tuple[int, int],
    *,
    exclude_padding: bool = True,
    floor: float | None = None,
    ws: Workspace | None = None,
) -> np.ndarray:
    """Max ('max') or average ('avg') pooling to `out_size`, with explicit declared `pads`.

    Windows may reach past the declared padding (ceil mode, `includeLastPixel`): that extra area
    never counts, while the declared padding counts towards averages unless `exclude_padding`.
    `floor` (max only) clamps the result from below: max pooling followed by ReLU in one go.
    """
    m, c, h, w = x.shape
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_size
    pt, pb, pl, pr = pads
    xh = x.transpose(0, 2, 3, 1)
    need_h, need_w = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    extra_b, extra_r = max(need_h - (pt + h + pb), 0), max(need_w - (pl + w + pr), 0)
    if pt or pb or pl or pr or extra_b or extra_r:
        fill = -np.inf if kind == "max" else 0.0
        xh = np.pad(xh, ((0, 0), (pt, pb + extra_b), (pl, pr + extra_r), (0, 0)), constant_values=fill)
    combine = np.maximum if kind == "max" else np.add
    # Max and sum are separable: first over kernel rows (each pass streams whole image rows),
    # then over kernel columns of the smaller result; one vectorised pass per kernel offset.
    rows = _scratch(ws, "rows", (m, oh) + xh.shape[2:])
    for i in range(kh):
        tap = xh[:, i : i + (oh - 1) * sh + 1 : sh]
        if i > 0:
            combine(rows, tap, out=rows)
        elif floor is not None and kind == "max":  # a following ReLU, for free: start from the floor
            np.maximum(tap, np.float32(floor), out=rows)
        else:
            np.copyto(rows, tap)
    out = _scratch(ws, "out", (m, oh, ow, c))
    for j in range(kw):
        tap = rows[:, :, j : j + (ow - 1) * sw + 1 : sw]
        np.copyto(out, tap) if j == 0 else combine(out, tap, out=out)
    if kind == "avg":
        counted = np.zeros(xh.shape[1:3], dtype=np.float32)
        if exclude_padding:
            counted[pt : pt + h, pl : pl + w] = 1
        else:
            counted[: pt + h + pb, : pl + w + pr] = 1
        windows = sliding_window_view(counted, (kh, kw))[: need_h - kh + 1 : sh, : need_w - kw + 1 : sw]
        out /= np.maximum(windows.sum(axis=(-2, -1)), 1)[None, :, :, None]
    return out.transpose(0, 3, 1, 2)


def pool_out_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int, *, ceil: bool) -> int:
    """Pooled length; in ceil mode the last window must start inside the image or its left padding."""
    span = size + pad_before + pad_after - kernel
    if span < 0:
        raise ValueError(f"a pooling window of {kernel} does not fit a length of {size}")
    if not ceil:
        return span // stride + 1
    out = math.ceil(span / stride) + 1
    if (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def upsample_nearest(x: np.ndarray, fh: int, fw: int) -> np.ndarray:
    return x.repeat(fh, axis=-2).repeat(fw, axis=-1)


def resize_bilinear(x: np.ndarray, oh: int, ow: int, *, align_corners: bool) -> np.ndarray:
    """Bilinear resize of the last two axes (half-pixel centres unless `align_corners`)."""

    def coords(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if align_corners:
            pos = np.arange(n_out) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        else:
            pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    h0, h1, fh = coords(x.shape[-2], oh)
    w0, w1, fw = coords(x.shape[-1], ow)
    rows = x[..., h0, :] * (1 - fh)[:, None] + x[..., h1, :] * fh[:, None]
    return rows[..., w0] * (1 - fw) + rows[..., w1] * fw


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
