"""Photos of a digit on paper to the 28x28 white-on-black image MNIST models expect."""

from __future__ import annotations

import dataclasses

import numpy as np

from kerasml.data.images import BAND_PIXELS
from kerasml.errors import KerasmlError
from kerasml.preprocess.drawing import FIELD, normalize_digit

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
    return prepare_grayscale(photo_grayscale(pixels))


def prepare_grayscale(gray: np.ndarray, full_shape: tuple[int, int] | None = None) -> PhotoPreparation:
    """`prepare_photo` from its first step's result: a 2-D uint8 photo already in `photo_grayscale`'s
    luma, kept (not copied) as the "grayscale" step. Only the shrink to WORK_SIDE reads it whole:
    everything after works on at most 256x256 pixels.

    `full_shape`: the (height, width) of the photo when `gray` was decoded from it at reduced scale
    (a JPEG at 1/8, whose sides are rounded up): the working size is the full photo's, so the
    digit keeps the proportions it has when the photo is decoded whole.
    """
    notes: list[str] = []
    steps = [("grayscale", gray)]
    work = gray
    if max(gray.shape) > WORK_SIDE:
        height, width = _fitted_size(full_shape or gray.shape, WORK_SIDE)
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


def photo_grayscale(pixels: np.ndarray) -> np.ndarray:
    """Rec. 601 luma in integers, half up: (299 R + 587 G + 114 B + 500) // 1000."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.size == 0 or not (
            pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise KerasmlError(f"expected an (H, W) or (H, W, 3) uint8 photo, got {pixels.dtype} {pixels.shape}; "
                           "decode the image to 8-bit grayscale or RGB first")
    if pixels.ndim == 2:
        return pixels.copy()
    gray = np.empty(pixels.shape[:2], dtype=np.uint8)
    rows = max(1, BAND_PIXELS // pixels.shape[1])       # a band at a time: no int64 copy of a big photo
    for top in range(0, len(pixels), rows):
        rgb = pixels[top:top + rows].astype(np.int32)
        gray[top:top + rows] = (299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2] + 500) // 1000
    return gray


def _fitted_size(shape: tuple[int, int], side: int) -> tuple[int, int]:
    """(height, width) with the longer side `side`, the shorter round(side * short / long), half up."""
    h, w = shape
    longer = max(h, w)
    return max(1, (2 * side * h + longer) // (2 * longer)), max(1, (2 * side * w + longer) // (2 * longer))


def _area_resize(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Exact area averaging to (out_h, out_w) no larger than the image, half up (as `_fit_box`).

    The weights are `area_overlaps`', applied in integers one axis at a time and one tile of at
    most BAND_PIXELS at a time, so a 40-megapixel photo is never copied as int64 or floats whole:
    the sums are the exact integers a float64 product of the overlap matrices gives.
    """
    h, w = image.shape
    tile_w = min(w, BAND_PIXELS)
    tile_h = max(1, BAND_PIXELS // tile_w)
    sums = np.zeros((out_h + 1, out_w), dtype=np.int64)            # + 1: see _shrink_part
    for top in range(0, h, tile_h):
        band = np.zeros((min(tile_h, h - top), out_w + 1), dtype=np.int64)
        for left in range(0, w, tile_w):
            tile = image[top:top + tile_h, left:left + tile_w].astype(np.int64)
            first, part = _shrink_part(tile.T, left, w, out_w)
            band[:, first:first + len(part)] += part.T
        first, part = _shrink_part(band[:, :out_w], top, h, out_h)
        sums[first:first + len(part)] += part
    return ((2 * sums[:out_h] + h * w) // (2 * h * w)).astype(np.uint8)


def _shrink_part(values: np.ndarray, offset: int, n: int, n_out: int) -> tuple[int, np.ndarray]:
    """Rows offset ... offset + len(values) of an n-row input, area-summed into n_out <= n rows:
    (the first output row they reach, their sums into it and the rows after it).

    In units where input row k is [k * n_out, (k+1) * n_out) and output row o is [o * n, (o+1) * n)
    (`area_overlaps`), an input row is no longer than an output row: it overlaps the output row
    holding its start, and the rest of it (possibly nothing) falls in the next one.
    """
    start = np.arange(offset, offset + len(values), dtype=np.int64) * n_out
    owner = start // n                                                # output row holding k's start
    inside = (np.minimum(start + n_out, (owner + 1) * n) - start).reshape((-1,) + (1,) * (values.ndim - 1))
    first = int(owner[0])
    groups = np.searchsorted(owner, np.arange(first, int(owner[-1]) + 1))   # each output row holds a start
    part = np.zeros((len(groups) + 1,) + values.shape[1:], dtype=np.int64)
    part[:-1] += np.add.reduceat(values * inside, groups, axis=0)
    part[1:] += np.add.reduceat(values * (n_out - inside), groups, axis=0)
    return first, part


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
