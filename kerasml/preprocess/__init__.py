"""Drawings and photos of digits to model inputs (moved; see photo.py)."""

from kerasml.preprocess.photo import (  # noqa: F401
    BOX, FIELD, PhotoPreparation, load_picture, model_stroke_width, normalize_digit, open_picture,
    picture_pixels, prepare_image, prepare_photo, prepare_picture, prepare_raw, rasterize_sketch,
    rasterize_strokes)
