"""Drawings: strokes rasterised as the app rasterises its canvas, and any white-on-black digit
prepared as MNIST's were (`normalize_digit`); the steps are spelled out in the package docstring."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from kerasml.errors import KerasmlError

FIELD = 28          # side of an MNIST image
BOX = 20            # side of the box the digit is scaled to fit


def rasterize_strokes(strokes: Iterable[Sequence[Sequence[float]]],
                      canvas_size: int | tuple[int, int],
                      line_width: float) -> np.ndarray:
    """Draw strokes (lists of (x, y) points in canvas pixels, y down) as white ink on black.

    `canvas_size` is a side or (width, height). Returns (height, width) uint8 of 0 and 255.
    A stroke of one point is a round dot; segments have round caps and joins.
    """
    width, height = (canvas_size, canvas_size) if np.isscalar(canvas_size) else canvas_size
    width, height = int(width), int(height)
    if width < 1 or height < 1:
        raise KerasmlError(f"canvas size {width}x{height} is empty; give a positive size")
    canvas = np.zeros((height, width), dtype=np.uint8)
    radius = float(line_width) / 2.0
    for stroke in strokes:
        points = [(float(x), float(y)) for x, y in stroke]
        if len(points) == 1:
            points = points * 2
        for (ax, ay), (bx, by) in zip(points, points[1:]):
            _stamp_segment(canvas, ax, ay, bx, by, radius)
    return canvas


def rasterize_sketch(strokes: Iterable[Sequence[Sequence[float]]], canvas_side: float, raster_side: int,
                     stroke_divisor: int, minimum_stroke: float) -> np.ndarray:
    """A drawing as the demo app rasterises it for the model (DigitKit's `Sketch.rasterized`).

    Points are in the square canvas's units; they are scaled to a `raster_side` square and drawn
    `model_stroke_width` wide: 1/`stroke_divisor` of the drawing's extent, at least
    `minimum_stroke` px, so any size of drawing gets MNIST-like strokes. The app's values are its
    contract's `drawing` section (`kerasml.app.reading.sketch_raster` passes them).
    """
    side = float(raster_side)
    scale = side / canvas_side if canvas_side > 0 else 1.0
    scaled = [[(float(x) * scale, float(y) * scale) for x, y in stroke] for stroke in strokes]
    return rasterize_strokes(scaled, raster_side, model_stroke_width(scaled, stroke_divisor, minimum_stroke))


def model_stroke_width(strokes, stroke_divisor: int, minimum_stroke: float) -> float:
    """1/`stroke_divisor` of the longer side of the points' bounding box, at least `minimum_stroke`."""
    points = [point for stroke in strokes for point in stroke]
    if not points:
        return minimum_stroke
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return max(max(max(xs) - min(xs), max(ys) - min(ys)) / float(stroke_divisor), minimum_stroke)


def _stamp_segment(canvas: np.ndarray, ax: float, ay: float, bx: float, by: float,
                   radius: float) -> None:
    height, width = canvas.shape
    # Only the pixels near the segment can be ink: its bounding box grown by the radius.
    x0 = max(int(np.floor(min(ax, bx) - radius)) - 1, 0)
    x1 = min(int(np.ceil(max(ax, bx) + radius)) + 1, width - 1)
    y0 = max(int(np.floor(min(ay, by) - radius)) - 1, 0)
    y1 = min(int(np.ceil(max(ay, by) + radius)) + 1, height - 1)
    if x0 > x1 or y0 > y1:
        return
    px = np.arange(x0, x1 + 1, dtype=np.float64)[None, :] + 0.5
    py = np.arange(y0, y1 + 1, dtype=np.float64)[:, None] + 0.5
    # Same operations, same order as DigitKit's `StrokeRasterizer` (no fused multiply-add there).
    dx = bx - ax
    dy = by - ay
    length2 = dx * dx + dy * dy
    if length2 == 0.0:
        t = np.zeros((y1 - y0 + 1, x1 - x0 + 1))
    else:
        t = np.clip(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0)
    ex = px - (ax + t * dx)
    ey = py - (ay + t * dy)
    inside = ex * ex + ey * ey <= radius * radius
    canvas[y0:y1 + 1, x0:x1 + 1][inside] = 255


def normalize_digit(image: np.ndarray) -> np.ndarray:
    """2-D uint8 white-on-black image of any size -> 28x28 uint8 prepared like MNIST.

    An image with no ink (all zeros) gives all zeros.
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0:
        raise KerasmlError(f"expected a 2-D grayscale image, got shape {image.shape}; "
                           "convert it to one channel first")
    image = np.clip(np.rint(image.astype(np.float64)), 0, 255).astype(np.int64)
    rows = np.flatnonzero(image.max(axis=1) > 0)
    cols = np.flatnonzero(image.max(axis=0) > 0)
    field = np.zeros((FIELD, FIELD), dtype=np.uint8)
    if rows.size == 0:
        return field
    crop = image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    digit = _fit_box(crop, BOX)
    top, left = _centring_offset(digit)
    field[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return field


def _fit_box(crop: np.ndarray, box: int) -> np.ndarray:
    """Scale `crop` so its longer side is `box`, keeping aspect, by exact area averaging."""
    h, w = crop.shape
    longer = max(h, w)
    out_h = max(1, (2 * box * h + longer) // (2 * longer))     # round(box * h / longer), half up
    out_w = max(1, (2 * box * w + longer) // (2 * longer))
    rows = area_overlaps(h, out_h)                              # (out_h, h) integer weights
    cols = area_overlaps(w, out_w)                              # (out_w, w)
    # Each sum is an integer far below 2**53, so float64 matrix products are exact and fast.
    sums = np.rint(rows.astype(np.float64) @ crop.astype(np.float64) @ cols.T.astype(np.float64))
    sums = sums.astype(np.int64)
    area = h * w                                                # sum of all weights of one output
    return ((2 * sums + area) // (2 * area)).astype(np.uint8)   # sums / area, half up


def area_overlaps(n_in: int, n_out: int) -> np.ndarray:
    """Overlap of input cell k, [k * n_out, (k+1) * n_out), with output cell o, [o * n_in, ...)."""
    k = np.arange(n_in)[None, :]
    o = np.arange(n_out)[:, None]
    lo = np.maximum(k * n_out, o * n_in)
    hi = np.minimum((k + 1) * n_out, (o + 1) * n_in)
    return np.maximum(hi - lo, 0)


def _centring_offset(digit: np.ndarray) -> tuple[int, int]:
    """Top-left corner that puts the digit's centre of mass on pixel (14, 14), as in MNIST.

    In pixel indices (pixel i's centre at i) every MNIST digit's centre of mass lies within half
    a pixel of 14. The offset is round(14 - sum(i * v) / sum(v)), half up, in integers:
    floor((29 * total - 2 * sum(i * v)) / (2 * total)).
    """
    h, w = digit.shape
    weights = digit.astype(np.int64)
    total = int(weights.sum())
    if total == 0:
        return (FIELD - h) // 2, (FIELD - w) // 2
    moment_y = int((np.arange(h) * weights.sum(axis=1)).sum())
    moment_x = int((np.arange(w) * weights.sum(axis=0)).sum())
    top = ((FIELD + 1) * total - 2 * moment_y) // (2 * total)
    left = ((FIELD + 1) * total - 2 * moment_x) // (2 * total)
    return min(max(top, 0), FIELD - h), min(max(left, 0), FIELD - w)
