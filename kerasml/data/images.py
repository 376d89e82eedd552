"""Image files as pixels: the one place kerasml opens a picture the user gives it (`predict`,
`preprocess.prepare_image`, the `kerasml try` page's uploads); training folders stream through
TensorFlow instead (folders.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasml.errors import KerasmlError


class ImageTooLarge(KerasmlError):
    """A picture with more pixels than its caller allows (the `kerasml try` page: HTTP 413)."""


def open_image(path: Path | str):
    """A PNG/JPEG file as a decoded PIL image, upright (EXIF orientation applied)."""
    path = Path(path)
    if not path.is_file():
        raise KerasmlError(f"{path} does not exist or is not a file; give a PNG or JPEG image")
    return decode_image(path, str(path))


def decode_image(source, name: str, max_pixels: int | None = None):
    """A picture (a path, or a binary file object such as an upload's bytes) decoded as a PIL image,
    upright (EXIF orientation applied); `name` says which in the one-line errors. With `max_pixels`,
    a larger picture is refused from its header, before its pixels are decoded."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(source) as opened:
            width, height = opened.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageTooLarge(f"{name} is {width}x{height} pixels; the limit is "
                                    f"{max_pixels // 1_000_000} megapixels, so shrink it first")
            opened.load()
            return ImageOps.exif_transpose(opened)
    except UnidentifiedImageError:
        raise KerasmlError(f"cannot read {name} as an image: not an image format kerasml can read; "
                           "give a PNG or JPEG file") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise KerasmlError(f"cannot read {name} as an image: a damaged image ({exc}); "
                           "give another PNG or JPEG file") from None


def image_pixels(picture) -> np.ndarray:
    """A decoded, upright PIL image as (H, W) or (H, W, 3) uint8: grayscale when it has no colour
    or has transparency (which becomes paper), RGB otherwise."""
    if "A" in picture.getbands() or "transparency" in picture.info or picture.mode in ("L", "1", "I", "I;16", "F"):
        return _grayscale(picture)
    return np.asarray(picture.convert("RGB"), dtype=np.uint8)


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
