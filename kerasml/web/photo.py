"""Uploaded images, decoded in memory (never written to disk) and prepared as `kerasml predict` does.

28x28 grayscale models get MNIST-style preparation (grayscale, inverted when the ink is dark, paper
cleared, cropped, centred); other grayscale models a plain resize after the same inversion; colour
models a plain resize. Every intermediate image is kept so the page can show the steps.
"""

from __future__ import annotations

import base64
import dataclasses
import io

import numpy as np

from kerasml import preprocess
from kerasml.errors import KerasmlError

MAX_PIXELS = 40_000_000          # a 40-megapixel photo; larger ones are refused before decoding
SHOWN_SIDE = 280                 # steps larger than this are shrunk for the page, never for the model


class ImageTooLarge(KerasmlError):
    """The upload decodes to more pixels than `MAX_PIXELS` (HTTP 413)."""


@dataclasses.dataclass
class PhotoPreparation:
    """Same fields as `kerasml.preprocess.PhotoPreparation` (added on another branch)."""

    image: np.ndarray                                           # what the model is given, uint8
    steps: list[tuple[str, np.ndarray]]                         # named intermediate images, uint8
    notes: list[str] = dataclasses.field(default_factory=list)


def open_upload(data: bytes):
    """The uploaded bytes as a loaded, upright PIL image; one clear error when they are not one."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise KerasmlError("the upload is empty; choose a PNG or JPEG image")
    try:
        picture = Image.open(io.BytesIO(data))
        width, height = picture.size
        if width * height > MAX_PIXELS:
            raise ImageTooLarge(f"the image is {width}x{height} pixels; the limit is "
                                f"{MAX_PIXELS // 1_000_000} megapixels, so shrink it first")
        picture.load()
        return ImageOps.exif_transpose(picture)
    except UnidentifiedImageError:
        raise KerasmlError("the upload is not an image format kerasml can read; choose a PNG or JPEG file") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise KerasmlError(f"the upload is a damaged image ({exc}); choose another PNG or JPEG file") from None


def prepare_photo(pixels: np.ndarray) -> PhotoPreparation:
    """Adapter for `kerasml.preprocess.prepare_photo(pixels)`, which another branch adds.

    Until then it builds the same structure from the steps of `preprocess.prepare_image`, in the
    same order, so the image is exactly what `kerasml predict` gives. At merge its body becomes
    `return preprocess.prepare_photo(pixels)`.
    """
    from PIL import Image

    gray = pixels if pixels.ndim == 2 else np.asarray(Image.fromarray(pixels).convert("L"))
    steps, notes = [("grayscale", gray)], []
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 127:
        gray, border = 255 - gray, 255 - border
        steps.append(("inverted", gray))
        notes.append("dark ink on light paper: inverted to white on black")
    cleared = preprocess._clear_paper(gray, border)
    steps.append(("paper cleared", cleared))
    rows, cols = np.flatnonzero(cleared.max(axis=1)), np.flatnonzero(cleared.max(axis=0))
    if rows.size:
        steps.append(("cropped", cleared[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]))
    else:
        notes.append("no ink found: the image is all paper")
    image = preprocess.normalize_digit(cleared)
    steps.append(("centred", image))
    return PhotoPreparation(image, steps, notes)


def prepare_upload(picture, height: int, width: int, channels: int) -> PhotoPreparation:
    """The model input for a decoded upload, as `kerasml predict` prepares a file."""
    from PIL import Image

    if channels == 3:                                    # predict._rgb: a plain bilinear resize
        rgb = np.asarray(picture.convert("RGB"), dtype=np.uint8)
        image = np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR))
        return PhotoPreparation(image, [("photo", rgb), (f"resized to {width}x{height}", image)])
    gray = preprocess._grayscale(picture)               # flattens transparency as prepare_image does
    if (height, width) == (preprocess.FIELD, preprocess.FIELD):
        return prepare_photo(gray)
    return prepare_photo_raw(gray, height, width)


def prepare_photo_raw(gray: np.ndarray, height: int, width: int) -> PhotoPreparation:
    """`prepare_image(raw=True)`: invert dark ink on light paper, then resize by area averaging."""
    from PIL import Image

    steps, notes = [("grayscale", gray)], []
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 127:
        gray = 255 - gray
        steps.append(("inverted", gray))
        notes.append("dark ink on light paper: inverted to white on black")
    image = np.asarray(Image.fromarray(gray).resize((width, height), Image.Resampling.BOX), dtype=np.uint8)
    steps.append((f"resized to {width}x{height}", image))
    return PhotoPreparation(image, steps, notes)


def png_data_url(pixels: np.ndarray, max_side: int | None = SHOWN_SIDE) -> str:
    """A PNG `data:` URL of a uint8 image, shrunk (display only) to fit `max_side`."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    if max_side and max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side), Image.Resampling.BOX)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
