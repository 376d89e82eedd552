"""Uploaded images, decoded in memory (never written to disk) and prepared as `kerasml predict` does.

28x28 grayscale digit models get the app's photo preparation (`kerasml.preprocess.prepare_photo`:
grayscale, illumination corrected, dark ink inverted, largest ink component cropped, centred);
other grayscale models a plain resize after the same inversion; colour models a plain resize.
Every intermediate image is kept so the page can show the steps.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from kerasml import preprocess
from kerasml.preprocess import PhotoPreparation
from kerasml.data import images
from kerasml.errors import KerasmlError

MAX_PIXELS = images.MAX_PIXELS   # a 40-megapixel photo; larger ones are refused before decoding
SHOWN_SIDE = 280                 # steps larger than this are shrunk for the page, never for the model


def open_upload(data: bytes, min_side: int | None = None):
    """The uploaded bytes as a loaded, upright PIL image, opened as `kerasml predict` opens a file
    (a JPEG at reduced scale, down to `min_side`); one clear error when they are not one, are
    animated or have more than `MAX_PIXELS`."""
    if not data:
        raise KerasmlError("the upload is empty; choose a PNG or JPEG image")
    return images.decode_image(io.BytesIO(data), "the upload", max_pixels=MAX_PIXELS, min_side=min_side)


def prepare_upload(picture, height: int, width: int, channels: int, digits: bool = True) -> PhotoPreparation:
    """The model input for a decoded upload, exactly as `kerasml predict` prepares a file."""
    return preprocess.prepare_picture(picture, height, width, channels, digits=digits)


def png_data_url(pixels: np.ndarray, max_side: int | None = SHOWN_SIDE) -> str:
    """A PNG `data:` URL of a uint8 image, shrunk (display only) to fit `max_side`."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    if max_side and max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side), Image.Resampling.BOX)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
