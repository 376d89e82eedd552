"""A picture to the input of a given model, as `kerasml predict` and the `kerasml try` page prepare it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasml.data.images import SCALED_FROM, open_image, pixel_bands, rgb_pixels
from kerasml.errors import KerasmlError
from kerasml.record import DIGITS
from kerasml.preprocess.drawing import FIELD
from kerasml.preprocess.photo import WORK_SIDE, PhotoPreparation, photo_grayscale, prepare_grayscale


def decode_side(height: int, width: int) -> int:
    """The longer side a picture must keep when it is decoded at reduced scale (a JPEG, for a model
    taking height x width images): the photo preparation's working side, or the model's when larger."""
    return max(WORK_SIDE, int(height), int(width))


def prepare_picture(picture, height: int, width: int, channels: int, raw: bool = False,
                    digits: bool = True) -> "PhotoPreparation":
    """A decoded PIL image → the input of a model taking height x width x channels images, as
    `kerasml predict` and the `kerasml try` page prepare it: 28x28 grayscale models of `digits`
    get the app's photo preparation (unless `raw`), other grayscale models `prepare_raw`, colour
    models a plain bilinear resize. A picture decoded at reduced scale says so in the first note."""
    from PIL import Image

    if channels == 3:
        rgb_picture = picture if picture.mode == "RGB" else picture.convert("RGB")
        image = np.asarray(rgb_picture.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
        rgb = rgb_pixels(rgb_picture)
        prepared = PhotoPreparation(image, [("photo", rgb), (f"resized to {width}x{height}", image)],
                                    [f"resized to {width}x{height}"])
    elif not raw and digits and (height, width) == (FIELD, FIELD):
        prepared = prepare_grayscale(picture_grayscale(picture), _full_shape(picture))
    else:
        prepared = prepare_raw(picture_grayscale(picture), height, width)
    if SCALED_FROM in picture.info:
        full_width, full_height = picture.info[SCALED_FROM]
        prepared.notes.insert(0, f"decoded at reduced scale: {full_width}x{full_height} read as "
                                 f"{picture.width}x{picture.height}")
    return prepared


def _full_shape(picture) -> tuple[int, int] | None:
    """(height, width) of the picture before a reduced-scale decode, or None."""
    full = picture.info.get(SCALED_FROM)
    return None if full is None else (full[1], full[0])


def picture_grayscale(picture) -> np.ndarray:
    """`photo_grayscale(image_pixels(picture))`, a band of rows at a time, so a big picture is
    never held as an RGB array: the (H, W) uint8 luma every grayscale preparation starts from."""
    gray = np.zeros((picture.height, picture.width), dtype=np.uint8)
    for top, band in pixel_bands(picture):
        gray[top:top + len(band)] = band if band.ndim == 2 else photo_grayscale(band)
    return photo_grayscale(gray) if gray.size == 0 else gray      # an empty picture: photo_grayscale's error


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
    border) inverted first. A big JPEG is decoded at reduced scale (`decode_side`), as by
    `kerasml predict`.
    """
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise KerasmlError(f"image size {size} is empty; give a positive height and width")
    if not raw and (height, width) != (FIELD, FIELD):
        raise KerasmlError(f"MNIST-style preparation makes 28x28 images, not {height}x{width}; "
                           "pass raw=True (--raw) to only resize")
    picture = open_image(path, min_side=decode_side(height, width))
    gray = picture_grayscale(picture)
    return (prepare_raw(gray, height, width) if raw else prepare_grayscale(gray, _full_shape(picture))).image


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
