"""Pooling of (M, C, H, W) batches: max and average `pool2d` and the pooled size `pool_out_size`."""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kerasml.runtime.kernels.workspace import Workspace, buffer


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
    rows = buffer(ws, "rows", (m, oh) + xh.shape[2:])
    for i in range(kh):
        tap = xh[:, i : i + (oh - 1) * sh + 1 : sh]
        if i > 0:
            combine(rows, tap, out=rows)
        elif floor is not None and kind == "max":  # a following ReLU, for free: start from the floor
            np.maximum(tap, np.float32(floor), out=rows)
        else:
            np.copyto(rows, tap)
    out = buffer(ws, "out", (m, oh, ow, c))
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

