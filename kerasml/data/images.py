"""Image files as pixels: the one place kerasml opens a picture the user gives it (`predict`,
`preprocess.prepare_image`, the `kerasml try` page's uploads); training folders stream through
TensorFlow instead (folders.py).

Pictures can be hostile (an upload from a web page) or merely huge (a 40-megapixel phone photo), so
reading one costs a bounded amount of memory and time: the size in the header is checked before any
pixel is decoded, animations and multi-page files are refused rather than walked, a JPEG is decoded at
the smallest scale its reader needs (libjpeg's 1/2, 1/4 or 1/8 DCT scaling: a 6000x6600 photo becomes
750x825 without ever existing at full size), and pixels are converted a band of rows at a time.
"""

from __future__ import annotations

import functools
import struct
from pathlib import Path
from typing import Iterator

import numpy as np

from kerasml.errors import KerasmlError

MAX_PIXELS = 40_000_000     # a 40-megapixel picture; larger ones are refused from their header
# The formats read, each decoded by Pillow itself with the size its header gives. JPEG includes MPO (a
# JPEG with more pictures after it, such as a phone's depth map; the first is the photo). Not TIFF
# (libtiff's many codecs, and its complaints on stderr), ICO/ICNS (an embedded PNG may be far larger
# than the header says), EPS (Ghostscript), nor the rest of Pillow's long list.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "PPM")
BAND_PIXELS = 1 << 20       # pixels converted at once: a 40 MP picture never exists as int64 or float
SCALED_FROM = "kerasml.scaled_from"   # picture.info key: (width, height) before a reduced-scale decode
_SWAPS_SIDES = {5, 6, 7, 8}           # EXIF orientations that turn the picture a quarter


class ImageTooLarge(KerasmlError):
    """A picture with more pixels than its caller allows (the `kerasml try` page: HTTP 413)."""


def open_image(path: Path | str, min_side: int | None = None, max_pixels: int | None = MAX_PIXELS):
    """A picture file as a decoded PIL image, upright (EXIF orientation applied); see `decode_image`."""
    path = Path(path)
    if not path.is_file():
        raise KerasmlError(f"{path} does not exist or is not a file; give a PNG or JPEG image")
    return decode_image(path, str(path), max_pixels=max_pixels, min_side=min_side)


def decode_image(source, name: str, max_pixels: int | None = MAX_PIXELS, min_side: int | None = None):
    """A picture (a path, or a binary file object such as an upload's bytes) decoded as a PIL image,
    upright (EXIF orientation applied); `name` says which in the one-line errors.

    A picture of more than `max_pixels` is refused from its header, before its pixels are decoded,
    and so is one with several frames (an animated GIF, PNG or WebP; an MPO, a JPEG followed by a
    depth map or preview, is read as its first picture). With `min_side`, a JPEG is decoded at the
    smallest of 1/2, 1/4 and 1/8 scale whose longer side is still at least `min_side`;
    `picture.info[SCALED_FROM]` then holds its full (upright) size.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    _quiet_pillow()
    try:
        with Image.open(source, formats=FORMATS) as opened:
            width, height = opened.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageTooLarge(f"{name} is {width}x{height} pixels; the limit is "
                                    f"{max_pixels // 1_000_000} megapixels, so shrink it first")
            if getattr(opened, "is_animated", False) and opened.format != "MPO":
                raise KerasmlError(f"{name} has several frames (an animated or multi-page {opened.format}); "
                                   "give a single picture as a PNG or JPEG file")
            scaled = min_side is not None and opened.format in ("JPEG", "MPO") and _draft(opened, min_side)
            opened.load()
            turned = opened.getexif().get(0x0112) in _SWAPS_SIDES
            ImageOps.exif_transpose(opened, in_place=True)      # in place: no copy when already upright
            if scaled:
                opened.info[SCALED_FROM] = (height, width) if turned else (width, height)
            return opened
    except UnidentifiedImageError:
        raise KerasmlError(f"cannot read {name} as an image: not an image format kerasml can read; "
                           "give a PNG or JPEG file") from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name} claims more than {2 * Image.MAX_IMAGE_PIXELS // 1_000_000} megapixels "
                            "in its header; give a real photo of at most "
                            f"{(max_pixels or MAX_PIXELS) // 1_000_000} megapixels") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        # What Pillow's decoders and parsers raise on damaged files (truncated data, bad tables).
        raise KerasmlError(f"cannot read {name} as an image: a damaged image ({_one_line(exc)}); "
                           "give another PNG or JPEG file") from None


def _draft(opened, min_side: int) -> bool:
    """Ask libjpeg for the smallest DCT scale (1/8, 1/4, 1/2) keeping the longer side >= min_side."""
    width, height = opened.size
    scale = 8
    while scale > 1 and max(width, height) // scale < min_side:
        scale //= 2
    if scale == 1:
        return False
    # Pillow picks the largest power of two <= min(width // w, height // h): at most `scale` here.
    opened.draft(None, (max(1, width // scale), max(1, height // scale)))
    return opened.size != (width, height)


def _quiet_pillow() -> None:
    """Pillow warns on stderr about pictures over 89 megapixels (kerasml's own, lower limit refuses
    them in one line; Pillow's error over 179 megapixels still comes, as ImageTooLarge) and about
    damaged EXIF blocks (read as no EXIF): neither may add lines to kerasml's one-line answers.
    Set on every call (the same filter is replaced, not added twice), since a caller's
    `warnings.catch_warnings()` block, pytest's for one, drops filters set inside it."""
    import warnings

    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def image_pixels(picture) -> np.ndarray:
    """A decoded, upright PIL image as (H, W) or (H, W, 3) uint8: grayscale when it has no colour
    or has transparency (which becomes paper), RGB otherwise."""
    return _assemble(picture, pixel_bands(picture))


def rgb_pixels(picture) -> np.ndarray:
    """A decoded PIL image as (H, W, 3) uint8 RGB (`picture.convert("RGB")`, a band at a time)."""
    return _assemble(picture, _bands(picture, lambda band: np.asarray(band.convert("RGB"), dtype=np.uint8)))


def pixel_bands(picture) -> Iterator[tuple[int, np.ndarray]]:
    """`image_pixels` a band of rows at a time, as (top row, pixels of those rows): converting a
    40-megapixel picture holds one band of RGB or floats, not the whole picture."""
    if _transparent(picture):
        return _bands(picture, functools.partial(_composite, paper=_paper_behind(picture)))
    if picture.mode in ("L", "1", "I", "I;16", "F"):
        return _bands(picture, lambda band: np.asarray(band.convert("L"), dtype=np.uint8))
    return _bands(picture, lambda band: np.asarray(band.convert("RGB"), dtype=np.uint8))


def _bands(picture, convert) -> Iterator[tuple[int, np.ndarray]]:
    width, height = picture.size
    rows = max(1, BAND_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        yield top, convert(picture.crop((0, top, width, min(top + rows, height))))


def _assemble(picture, bands: Iterator[tuple[int, np.ndarray]]) -> np.ndarray:
    width, height = picture.size
    pixels = np.zeros((height, width), dtype=np.uint8)          # an empty picture stays empty
    for top, band in bands:
        if top == 0:
            pixels = np.empty((height, width) + band.shape[2:], dtype=np.uint8)
        pixels[top:top + len(band)] = band
    return pixels


def _transparent(picture) -> bool:
    return "A" in picture.getbands() or "transparency" in picture.info


def _paper_behind(picture) -> int:
    """The paper colour that contrasts the ink: white when the opaque pixels are dark on average."""
    total, count = 0, 0
    for _, (luma, opaque) in _bands(picture, _opaque_luma):
        total += int(luma[opaque].sum())
        count += int(opaque.sum())
    ink_is_dark = count > 0 and total / count < 128
    return 255 if ink_is_dark else 0


def _opaque_luma(band) -> tuple[np.ndarray, np.ndarray]:
    rgba = band.convert("RGBA")
    opaque = np.asarray(rgba, dtype=np.uint8)[..., 3] > 127           # alpha / 255 > 0.5
    return np.asarray(rgba.convert("L"), dtype=np.int64), opaque


def _composite(band, paper: int) -> np.ndarray:
    """Luminance as uint8; transparent pixels become the paper colour that contrasts the ink:
    round((luma * alpha + paper * (255 - alpha)) / 255), in integers. (The float formula it
    replaces gives the same: the exact value is never within 1/510 of a half.)"""
    rgba = band.convert("RGBA")
    alpha = np.asarray(rgba, dtype=np.uint8)[..., 3].astype(np.int32)
    luma = np.asarray(rgba.convert("L"), dtype=np.uint8).astype(np.int32)
    return ((2 * (luma * alpha + paper * (255 - alpha)) + 255) // 510).astype(np.uint8)
