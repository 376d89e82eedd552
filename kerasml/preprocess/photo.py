"""Prepare a drawing or a photo of a digit the way the MNIST digits were prepared.

Drawings: `rasterize_sketch` (as the app rasterises its canvas) then `normalize_digit`. Photos of
digits on paper: `prepare_photo` (grayscale, illumination, threshold, largest ink component, then
`normalize_digit`), documented at its definition.

MNIST's recipe (LeCun et al.): crop the ink, scale it to fit a 20x20 box keeping its aspect ratio,
with anti-aliasing, then place it in a 28x28 field so its centre of mass is at the centre. A demo
that squashes the whole canvas to 28x28 instead misreads small or off-centre digits.

The Swift package `ios_app/DigitKit` implements the same steps, and both sides are checked
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

import dataclasses
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


def rasterize_sketch(strokes: Iterable[Sequence[Sequence[float]]], canvas_side: float = 1.0,
                     raster_side: int = 280, stroke_divisor: int = 6,
                     minimum_stroke: float = 2.0) -> np.ndarray:
    """A drawing as the demo app rasterises it for the model (DigitKit's `Sketch.rasterized`).

    Points are in the square canvas's units (the app uses 0...1); they are scaled to a
    `raster_side` square and drawn `model_stroke_width` wide: 1/`stroke_divisor` of the drawing's
    extent, at least `minimum_stroke` px, so any size of drawing gets MNIST-like strokes. The
    defaults are the app contract's (ios_app/app-contract.json, `drawing`).
    """
    side = float(raster_side)
    scale = side / canvas_side if canvas_side > 0 else 1.0
    scaled = [[(float(x) * scale, float(y) * scale) for x, y in stroke] for stroke in strokes]
    return rasterize_strokes(scaled, raster_side, model_stroke_width(scaled, stroke_divisor, minimum_stroke))


def model_stroke_width(strokes, stroke_divisor: int = 6, minimum_stroke: float = 2.0) -> float:
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


def open_picture(path: Path | str):
    """A PNG/JPEG file as a decoded PIL image, upright (EXIF orientation applied)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise KerasmlError(f"{path} does not exist or is not a file; give a PNG or JPEG image")
    try:
        with Image.open(path) as opened:
            opened.load()
            return ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise KerasmlError(f"cannot read {path} as an image ({exc}); give a PNG or JPEG file") from None


def load_picture(path: Path | str) -> np.ndarray:
    """A PNG/JPEG as (H, W) or (H, W, 3) uint8, upright (EXIF orientation applied).

    Transparent pixels become the paper colour that contrasts with the ink, in grayscale.
    """
    return picture_pixels(open_picture(path))


def prepare_picture(picture, height: int, width: int, channels: int, raw: bool = False) -> "PhotoPreparation":
    """A decoded PIL image → the input of a model taking height x width x channels images, as
    `kerasml predict` and the `kerasml try` page prepare it: 28x28 grayscale models get the app's
    photo preparation (unless `raw`), other grayscale models `prepare_raw`, colour models a plain
    bilinear resize."""
    from PIL import Image

    if channels == 3:
        rgb = np.asarray(picture.convert("RGB"), dtype=np.uint8)
        image = np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
        return PhotoPreparation(image, [("photo", rgb), (f"resized to {width}x{height}", image)],
                                [f"resized to {width}x{height}"])
    pixels = picture_pixels(picture)
    if not raw and (height, width) == (FIELD, FIELD):
        return prepare_photo(pixels)
    return prepare_raw(pixels, height, width)


def picture_pixels(picture) -> np.ndarray:
    """A decoded, upright PIL image as (H, W) or (H, W, 3) uint8: grayscale when it has no colour
    or has transparency (which becomes paper), RGB otherwise."""
    if "A" in picture.getbands() or "transparency" in picture.info or picture.mode in ("L", "1", "I", "I;16", "F"):
        return _grayscale(picture)
    return np.asarray(picture.convert("RGB"), dtype=np.uint8)


def prepare_image(path: Path | str, raw: bool = False, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Load a PNG/JPEG of a digit and return a (height, width) uint8 white-on-black array.

    Unless `raw`, the picture goes through `prepare_photo` (the app's photo preparation). With
    `raw` it is only resized (area averaging) to `size`, dark ink on light paper (judged from the
    border) inverted first.
    """
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise KerasmlError(f"image size {size} is empty; give a positive height and width")
    if not raw and (height, width) != (FIELD, FIELD):
        raise KerasmlError(f"MNIST-style preparation makes 28x28 images, not {height}x{width}; "
                           "pass raw=True (--raw) to only resize")
    pixels = load_picture(path)
    return (prepare_raw(pixels, height, width) if raw else prepare_photo(pixels)).image


def prepare_raw(pixels: np.ndarray, height: int, width: int) -> "PhotoPreparation":
    """`--raw`: grayscale, dark ink on light paper (judged from the border) inverted, then only
    resized to height x width by area averaging."""
    from PIL import Image

    gray = _photo_grayscale(pixels)
    steps, notes = [("grayscale", gray)], []
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 127:                 # light paper, dark ink: make it white-on-black
        gray = 255 - gray
        steps.append(("inverted", gray))
        notes.append("inverted: dark ink on light paper")
    image = np.asarray(Image.fromarray(gray).resize((width, height), Image.Resampling.BOX), dtype=np.uint8)
    steps.append((f"resized to {width}x{height}", image))
    notes.append(f"resized to {width}x{height}")
    return PhotoPreparation(image, steps, notes)


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


# ---------------------------------------------------------------------------------------- photos
# A photo of a digit written on paper, to the 28x28 white-on-black image MNIST models expect.
# DigitKit's `PhotoPreparer` runs the same steps with the same integer (and, for Otsu's threshold,
# the same float64) operations, checked pixel for pixel by the photo fixtures in digits.json.

WORK_SIDE = 256         # photos are first area-averaged down to this longer side (never up)
MIN_CONTRAST = 64       # corrected ink level (of 255) below which nothing is ink, whatever Otsu says
KEEP_FRACTION = 50      # other ink components are kept when at least 1/50 of the largest ...
REACH_DIVISOR = 4       # ... and within 1/4 of its longer side of its box (a 5's detached hat)
MNIST_STROKE = 8        # MNIST strokes are about 1/8 of the digit's longer side (2.5 px of 20)


@dataclasses.dataclass
class PhotoPreparation:
    image: np.ndarray                                      # 28x28 uint8, white on black: the model input
    steps: list[tuple[str, np.ndarray]] = dataclasses.field(default_factory=list)   # named uint8 images
    notes: list[str] = dataclasses.field(default_factory=list)                      # what was done, in words


def prepare_photo(pixels: np.ndarray) -> PhotoPreparation:
    """(H, W) or (H, W, 3) uint8 photo of one digit -> the 28x28 image MNIST models expect.

    Grayscale; shrink to at most 256 px; decide whether the ink is darker than the ground (it is
    the minority in the middle of the photo: light ink only on a clearly dark ground) and make
    the ink the dark side; estimate
    the paper's light with a grey closing (max then min filter, wider than any pen stroke) and
    divide it out, so shadows and gradients vanish and the ink becomes white on black; threshold
    at Otsu's level (at least MIN_CONTRAST); keep the largest 8-connected ink component that does
    not touch the photo's edge (and
    sizeable pieces near it); crop to it, thicken strokes thinner than MNIST's, fit to 20x20 and
    centre by mass in 28x28 (`normalize_digit`).
    """
    notes: list[str] = []
    gray = _photo_grayscale(pixels)
    steps = [("grayscale", gray)]
    work = gray
    if max(gray.shape) > WORK_SIDE:
        height, width = _fitted_size(gray.shape, WORK_SIDE)
        work = _area_resize(gray, height, width)
        notes.append(f"scaled down from {gray.shape[1]}x{gray.shape[0]} to {width}x{height}")
    dark_ink = _ink_is_dark(work)
    notes.append("inverted: dark ink on light paper" if dark_ink else "kept: light ink on a dark ground")
    corrected = _flatten_illumination(work if dark_ink else 255 - work)
    steps.append(("illumination corrected", corrected))
    threshold = max(_otsu_threshold(corrected), MIN_CONTRAST)
    mask = corrected > threshold
    steps.append(("ink mask", np.where(mask, 255, 0).astype(np.uint8)))
    # Ink touching the photo's edge is the table around the paper or a shadow, not the digit; so
    # is "ink" wider than the closing's radius (2 * area / boundary), which no pen stroke can be,
    # and a speck of fewer pixels than that radius (noise).
    boundary = (mask & ~_interior(mask)).ravel()
    radius = _closing_radius(mask.shape)
    components = [c for c in _components(mask)
                  if c[1] > 0 and c[2] > 0 and c[3] < mask.shape[0] - 1 and c[4] < mask.shape[1] - 1
                  and radius <= c[0] and 2 * c[0] <= radius * int(boundary[c[5]].sum())]
    if not components:
        notes.append("no ink found away from the photo's edges: the paper is blank or the ink too faint")
        blank = np.zeros((FIELD, FIELD), dtype=np.uint8)
        return PhotoPreparation(blank, steps + [("centred", blank)], notes)
    cropped, kept = _crop_ink(corrected, mask.shape, components)
    notes.append("cropped to the largest ink component" + (f" and {kept - 1} piece(s) beside it" if kept > 1 else "")
                 + (f" ({len(components) - kept} other piece(s) dropped)" if len(components) > kept else ""))
    steps.append(("cropped", cropped))
    thickened, radius = _thicken(cropped)
    if radius:
        notes.append(f"strokes thickened by {radius} px to MNIST's width")
        steps.append(("thickened", thickened))
    image = normalize_digit(thickened)
    steps.append(("centred", image))
    return PhotoPreparation(image, steps, notes)


def _photo_grayscale(pixels: np.ndarray) -> np.ndarray:
    """Rec. 601 luma in integers, half up: (299 R + 587 G + 114 B + 500) // 1000."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.size == 0 or not (
            pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise KerasmlError(f"expected an (H, W) or (H, W, 3) uint8 photo, got {pixels.dtype} {pixels.shape}; "
                           "decode the image to 8-bit grayscale or RGB first")
    if pixels.ndim == 2:
        return pixels.copy()
    rgb = pixels.astype(np.int64)
    return ((299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2] + 500) // 1000).astype(np.uint8)


def _fitted_size(shape: tuple[int, int], side: int) -> tuple[int, int]:
    """(height, width) with the longer side `side`, the shorter round(side * short / long), half up."""
    h, w = shape
    longer = max(h, w)
    return max(1, (2 * side * h + longer) // (2 * longer)), max(1, (2 * side * w + longer) // (2 * longer))


def _area_resize(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Exact area averaging to (out_h, out_w), half up (as `_fit_box`, any output size)."""
    h, w = image.shape
    rows, cols = _overlaps(h, out_h).astype(np.float64), _overlaps(w, out_w).astype(np.float64)
    sums = np.rint(rows @ image.astype(np.float64) @ cols.T).astype(np.int64)   # exact: < 2**53
    return ((2 * sums + h * w) // (2 * h * w)).astype(np.uint8)


def _rank_value(values: np.ndarray, percent: int) -> int:
    """The value at index (n - 1) * percent // 100 of the sorted values."""
    counts = np.cumsum(np.bincount(values.ravel(), minlength=256))
    return int(np.searchsorted(counts, (values.size - 1) * percent // 100, side="right"))


def _ink_is_dark(gray: np.ndarray) -> bool:
    """The ground is the majority: the ink is light only when the median lies in the darkest 3/8
    of the range from the 1st to the 99th percentile (a dark board); otherwise it is dark ink on
    paper, the usual case, also for blank paper under a gradient, whose median sits mid-range.

    Judged on the middle half of the photo (rows and columns from 1/4 to 3/4), which is paper
    and ink when the digit is framed, however much table shows around the paper.
    """
    h, w = gray.shape
    middle = gray[h // 4:h - h // 4, w // 4:w - w // 4]
    low, high = _rank_value(middle, 1), _rank_value(middle, 99)
    return 8 * (_rank_value(middle, 50) - low) >= 3 * (high - low)


def _window_filter(image: np.ndarray, radius: int, reduce) -> np.ndarray:
    """Max or min over a (2r+1)-square window clipped at the borders (separable)."""
    from numpy.lib.stride_tricks import sliding_window_view

    size = 2 * radius + 1
    out = reduce(sliding_window_view(np.pad(image, ((0, 0), (radius, radius)), mode="edge"), size, axis=1), axis=-1)
    return reduce(sliding_window_view(np.pad(out, ((radius, radius), (0, 0)), mode="edge"), size, axis=0), axis=-1)


def _closing_radius(shape: tuple[int, int]) -> int:
    """Half the side of the window that estimates the paper's light: wider than any pen stroke."""
    return max(4, max(shape) // 8)


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels whose four neighbours are all set (outside the image counts as unset)."""
    padded = np.pad(mask, 1)
    return mask & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]


def _flatten_illumination(dark_ink: np.ndarray) -> np.ndarray:
    """Ink (dark, narrower than the window) on any lighting -> ink bright on black.

    The paper's light is the grey closing of the image; each pixel's shortfall from it, as a
    fraction of it (never of less than half the brightest paper, so dark table or shadow noise is
    not blown up), scaled to 255, half up.
    """
    radius = _closing_radius(dark_ink.shape)
    paper = _window_filter(_window_filter(dark_ink, radius, np.max), radius, np.min).astype(np.int64)
    floor = max(_rank_value(paper.astype(np.uint8), 99) // 2, 1)
    scale = np.maximum(paper, floor)
    shortfall = paper - dark_ink.astype(np.int64)
    return np.minimum((510 * shortfall + scale) // (2 * scale), 255).astype(np.uint8)


def _otsu_threshold(image: np.ndarray) -> int:
    """Otsu's threshold t (ink is > t): the split with the largest between-class variance.

    The variance is (s0 * n - total * w0)^2 / (w0 * w1) up to a constant; the difference is an
    exact integer and the rest are float64 operations in a fixed order, as in DigitKit.
    """
    hist = np.bincount(image.ravel(), minlength=256).tolist()
    n, total = image.size, sum(i * count for i, count in enumerate(hist))
    best, best_t, w0, s0 = -1.0, 0, 0, 0
    for t in range(255):
        w0 += hist[t]
        s0 += t * hist[t]
        w1 = n - w0
        if w0 == 0 or w1 == 0:
            continue
        diff = float(s0 * n - total * w0)
        between = diff * diff / (float(w0) * float(w1))
        if between > best:
            best, best_t = between, t
    return best_t


def _components(mask: np.ndarray) -> list[tuple[int, int, int, int, int, np.ndarray]]:
    """8-connected components in raster order of their first pixel: (size, top, left, bottom, right, flat indices)."""
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=int))
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")                 # pixel indices grouped by label, raster order within
    starts = np.searchsorted(flat[order], np.arange(1, count + 2))
    found = []
    for label in range(count):
        pixels = order[starts[label]:starts[label + 1]]
        ys, xs = pixels // mask.shape[1], pixels % mask.shape[1]
        found.append((len(pixels), int(ys.min()), int(xs.min()), int(ys.max()), int(xs.max()), pixels))
    return sorted(found, key=lambda c: int(c[5][0]))        # by first pixel, whatever scipy's numbering


def _crop_ink(corrected: np.ndarray, shape: tuple[int, int], components) -> tuple[np.ndarray, int]:
    """The largest component (first on ties) and the sizeable ones near it, cropped, ink up to 255."""
    main = max(components, key=lambda c: c[0])        # max() keeps the first of equals
    _, top, left, bottom, right, _ = main
    reach = max(bottom - top + 1, right - left + 1) // REACH_DIVISOR
    kept = [c for c in components if c is main or (
        c[0] * KEEP_FRACTION >= main[0] and c[1] <= bottom + reach and c[3] >= top - reach
        and c[2] <= right + reach and c[4] >= left - reach)]
    keep = np.zeros(shape, dtype=np.uint8)
    for component in kept:
        keep.ravel()[component[5]] = 1
    top, left = min(c[1] for c in kept), min(c[2] for c in kept)
    bottom, right = max(c[3] for c in kept), max(c[4] for c in kept)
    near = _window_filter(keep, 1, np.max)[top:bottom + 1, left:right + 1] > 0   # keeps the soft edges
    ink = np.where(near, corrected[top:bottom + 1, left:right + 1], 0).astype(np.int64)
    peak = int(corrected[keep > 0].max())
    return np.minimum((510 * ink + peak) // (2 * peak), 255).astype(np.uint8), len(kept)


def _thicken(crop: np.ndarray) -> tuple[np.ndarray, int]:
    """Grey dilation by r px when strokes are thinner than MNIST's 1/8 of the longer side.

    Stroke width ~ 2 * area / boundary (a stroke of width w and length l has area w * l and about
    2 * l boundary pixels); r = round((longer / 8 - width) / 2), in integers.
    """
    ink = crop > 0
    area = int(ink.sum())
    boundary = int((ink & ~_interior(ink)).sum())
    longer = max(crop.shape)
    radius = max(0, (2 * (longer * boundary - 16 * area) + 16 * boundary) // (32 * boundary))
    if radius == 0:
        return crop, 0
    padded_crop = np.pad(crop, radius)
    return _window_filter(padded_crop, radius, np.max), radius
