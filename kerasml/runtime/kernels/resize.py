"""Resampling the last two (H, W) axes: sampling grids (`sample_grid`, `box_grid`), bilinear and
nearest-neighbour resizing."""

from __future__ import annotations

import numpy as np


GRID_MODES = ("align_corners", "align_endpoints", "asymmetric", "half_pixel", "roi_align")


def sample_grid(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """`n_out` sampling positions in input pixel units along one axis of length `n_in`.

    align_corners:   linspace(0, n_in - 1, n_out) (a single output sits at 0)
    align_endpoints: the same, but a single output sits at the centre (n_in - 1) / 2
    asymmetric:      i * n_in / n_out                    (NN upsample DEFAULT, SamplingMode UPSAMPLE_MODE)
    half_pixel:      (i + 0.5) * n_in / n_out - 0.5      (ALIGN_CORNERS_FALSE, TensorFlow 2 / Keras)
    roi_align:       spacing max(1, n_in - 1) / n_out, start at half a spacing
    Positions are clamped to [0, n_in - 1], as every Core ML mode specifies.
    """
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("align_corners", "align_endpoints"):
        if n_out == 1:
            pos = np.array([0.0 if mode == "align_corners" else (n_in - 1) / 2])
        else:
            pos = i * (n_in - 1) / (n_out - 1)
    elif mode == "asymmetric":
        pos = i * n_in / n_out
    elif mode == "half_pixel":
        pos = (i + 0.5) * n_in / n_out - 0.5
    elif mode == "roi_align":
        spacing = max(1, n_in - 1) / n_out
        pos = 0.5 * spacing + i * spacing
    else:
        raise ValueError(f"grid mode {mode!r} is not one of {', '.join(GRID_MODES)}")
    return np.clip(pos, 0, n_in - 1)


def box_grid(start: float, end: float, n_out: int, mode: str) -> np.ndarray:
    """`n_out` positions inside the box edge [start, end] (pixel units, end < start allowed for the
    corner modes), the box read as the interval [0, X - 1] of `sample_grid` with X - 1 = end - start."""
    span = end - start
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("align_corners", "align_endpoints"):
        if n_out == 1:
            return np.array([start if mode == "align_corners" else start + span / 2])
        return start + i * span / (n_out - 1)
    if span < 0:
        raise ValueError(f"a box from {start} to {end} runs backwards, which {mode} sampling does not allow")
    if mode == "asymmetric":
        pos = i * (span + 1) / n_out
    elif mode == "roi_align":
        spacing = max(1.0, span) / n_out
        pos = 0.5 * spacing + i * spacing
    else:
        raise ValueError(f"grid mode {mode!r} cannot sample a box")
    return start + np.minimum(pos, span)


def _linear_weights(pos: np.ndarray, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = np.clip(np.floor(pos), 0, n_in - 1).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def bilinear_sample(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """x (..., H, W) sampled bilinearly at every (row, column) of the grid rows x cols → (..., R, C).
    Positions must lie in [0, H - 1] and [0, W - 1]."""
    h0, h1, fh = _linear_weights(np.asarray(rows, np.float64), x.shape[-2])
    w0, w1, fw = _linear_weights(np.asarray(cols, np.float64), x.shape[-1])
    x = x.astype(np.float32, copy=False)
    top = x[..., h0, :] * (1 - fh)[:, None] + x[..., h1, :] * fh[:, None]
    return (top[..., w0] * (1 - fw) + top[..., w1] * fw).astype(np.float32, copy=False)


def resize_bilinear(x: np.ndarray, out_hw: tuple[int, int], mode: str) -> np.ndarray:
    """Bilinear resize of the last two axes of x (..., H, W) on a `sample_grid` mode."""
    return bilinear_sample(
        x, sample_grid(x.shape[-2], out_hw[0], mode), sample_grid(x.shape[-1], out_hw[1], mode)
    )


def nearest_indices(n_in: int, n_out: int, *, half_pixel: bool = False) -> np.ndarray:
    """Source index of each output for nearest-neighbour resizing: floor(i * n_in / n_out)
    (or of the pixel centres, floor((i + 0.5) * n_in / n_out), with `half_pixel`), computed in
    exact integer arithmetic so no ratio rounds an index down."""
    i = np.arange(n_out, dtype=np.int64)
    idx = ((2 * i + 1) * n_in) // (2 * n_out) if half_pixel else (i * n_in) // n_out
    return np.minimum(idx, n_in - 1)


def resize_nearest(x: np.ndarray, out_hw: tuple[int, int], *, half_pixel: bool = False) -> np.ndarray:
    """Nearest-neighbour resize of the last two axes of x (..., H, W) to `out_hw`."""
    rows = nearest_indices(x.shape[-2], out_hw[0], half_pixel=half_pixel)
    cols = nearest_indices(x.shape[-1], out_hw[1], half_pixel=half_pixel)
    return x[..., rows, :][..., cols]

