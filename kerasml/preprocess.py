"""Prepare a drawing or a photo of a digit the way the MNIST digits were prepared.

MNIST's recipe (LeCun et al.): crop the ink, scale it to fit a 20x20 box keeping its aspect ratio,
with anti-aliasing, then place it in a 28x28 field so its centre of mass is at the centre. A demo
that squashes the whole canvas to 28x28 instead misreads small or off-centre digits.

The Swift package `ios_app/Sources/DigitKit` implements the same steps, and both sides are checked
against the same fixtures (`tests/fixtures/digits.json`), so every step below is defined in
integer arithmetic or in the same floating-point operations, in the same order, as the Swift code:

1. `rasterize_strokes`: a canvas pixel is ink (255) when its centre lies within `line_width / 2`
   of a stroke segment, otherwise 0 (bilevel, like the NIST originals).
2. `normalize_digit`: the ink is every pixel above 0. Its bounding box (h x w) is scaled so the
   longer side becomes 20 and the shorter `round(20 * short / long)` (at least 1), by exact area
   averaging: output pixel i covers the input interval [i * h / out_h, (i + 1) * h / out_h), and
   its value is the mean of the input weighted by overlap. All overlaps are integers once lengths
   are multiplied by out_h (or out_w), so each output is an exact fraction, rounded half up.
3. The scaled digit is pasted into 28x28 at the integer offset that brings its centre of mass
   (weights = grey levels, pixel i's centre at index i) nearest to pixel (14, 14), half up,
   clamped so the whole box stays inside the field.
"""

from __future__ import annotations

from pathlib import Path
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
    rows = _overlaps(h, out_h)                                  # (out_h, h) integer weights
    cols = _overlaps(w, out_w)                                  # (out_w, w)
    # Each sum is an integer far below 2**53, so float64 matrix products are exact and fast.
    sums = np.rint(rows.astype(np.float64) @ crop.astype(np.float64) @ cols.T.astype(np.float64))
    sums = sums.astype(np.int64)
    area = h * w                                                # sum of all weights of one output
    return ((2 * sums + area) // (2 * area)).astype(np.uint8)   # sums / area, half up


def _overlaps(n_in: int, n_out: int) -> np.ndarray:
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


def prepare_image(path: Path | str, raw: bool = False, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Load a PNG/JPEG of a digit and return a (height, width) uint8 white-on-black array.

    Dark ink on light paper is detected from the border and inverted. Unless `raw`, the paper is
    cleared to black and the digit is cropped, fitted and centred by `normalize_digit`; with
    `raw` the image is only resized (area averaging) to `size`.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise KerasmlError(f"{path} does not exist or is not a file; give a PNG or JPEG image")
    try:
        with Image.open(path) as opened:
            opened.load()
            picture = ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise KerasmlError(f"cannot read {path} as an image ({exc}); give a PNG or JPEG file") from None
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise KerasmlError(f"image size {size} is empty; give a positive height and width")
    if not raw and (height, width) != (FIELD, FIELD):
        raise KerasmlError(f"MNIST-style preparation makes 28x28 images, not {height}x{width}; "
                           "pass raw=True (--raw) to only resize")
    gray = _grayscale(picture)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 127:                 # light paper, dark ink: make it white-on-black
        gray = 255 - gray
        border = 255 - border
    if raw:
        resized = Image.fromarray(gray).resize((width, height), Image.Resampling.BOX)
        return np.asarray(resized, dtype=np.uint8)
    return normalize_digit(_clear_paper(gray, border))


def _grayscale(picture) -> np.ndarray:
    """Luminance as uint8; transparent pixels become the paper colour that contrasts the ink."""
    if "A" in picture.getbands() or "transparency" in picture.info:
        rgba = np.asarray(picture.convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3] / 255.0
        luma = np.asarray(picture.convert("RGBA").convert("L"), dtype=np.float64)
        opaque = alpha > 0.5
        ink_is_dark = opaque.any() and luma[opaque].mean() < 128
        paper = 255.0 if ink_is_dark else 0.0
        return np.rint(luma * alpha + paper * (1 - alpha)).astype(np.uint8)
    return np.asarray(picture.convert("L"), dtype=np.uint8)


def _clear_paper(gray: np.ndarray, border: np.ndarray) -> np.ndarray:
    """Paper to 0 and ink stretched up to 255, so the ink's bounding box is the digit's.

    The paper level is the border's 90th percentile; on anything but a clean black ground
    (photos, scans, JPEG ringing) a fifth of the way up to the ink also counts as paper.
    A clean MNIST-like image (black border, ink up to 255) comes back unchanged.
    """
    paper = float(np.percentile(border, 90))
    peak = float(gray.max())
    if peak <= paper:
        return np.zeros_like(gray)
    if paper > 0:
        paper += 0.2 * (peak - paper)
    stretched = (gray.astype(np.float64) - paper) * (255.0 / (peak - paper))
    return np.clip(np.rint(stretched), 0, 255).astype(np.uint8)
