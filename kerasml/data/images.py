"""Image files as pixels: the one place kerasml opens a picture the user gives it (`predict`,
`preprocess.prepare_image`); training folders stream through TensorFlow instead (folders.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasml.errors import KerasmlError


def open_image(path: Path | str):
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
