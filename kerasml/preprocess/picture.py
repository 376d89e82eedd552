"""A picture to the input of a given model, as `kerasml predict` and the `kerasml try` page prepare it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasml.data.images import image_pixels, open_image
from kerasml.errors import KerasmlError
from kerasml.record import DIGITS
from kerasml.preprocess.drawing import FIELD
from kerasml.preprocess.photo import PhotoPreparation, photo_grayscale, prepare_photo


def prepare_picture(picture, height: int, width: int, channels: int, raw: bool = False,
                    digits: bool = True) -> "PhotoPreparation":
    """A decoded PIL image → the input of a model taking height x width x channels images, as
    `kerasml predict` and the `kerasml try` page prepare it: 28x28 grayscale models of `digits`
    get the app's photo preparation (unless `raw`), other grayscale models `prepare_raw`, colour
    models a plain bilinear resize."""
    from PIL import Image

    if channels == 3:
        rgb = np.asarray(picture.convert("RGB"), dtype=np.uint8)
        image = np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
        return PhotoPreparation(image, [("photo", rgb), (f"resized to {width}x{height}", image)],
                                [f"resized to {width}x{height}"])
    pixels = image_pixels(picture)
    if not raw and digits and (height, width) == (FIELD, FIELD):
        return prepare_photo(pixels)
    return prepare_raw(pixels, height, width)


def reads_digits(labels) -> bool:
    """Whether a classifier's labels are the ten digits, in any order: only then does a photo get
    the digit preparation (one ink component, strokes thickened, fitted into 20x20 and centred by
    mass). A 28x28 grayscale model of anything else, Fashion-MNIST's garments say, would lose its
    picture's shape and texture to it; it gets the plain resize instead."""
    return sorted(str(label) for label in labels) == DIGITS


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
    pixels = image_pixels(open_image(path))
    return (prepare_raw(pixels, height, width) if raw else prepare_photo(pixels)).image


def prepare_raw(pixels: np.ndarray, height: int, width: int) -> "PhotoPreparation":
    """`--raw`: grayscale, dark ink on light paper (judged from the border) inverted, then only
    resized to height x width by area averaging."""
    from PIL import Image

    gray = photo_grayscale(pixels)
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
