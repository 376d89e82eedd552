"""Classify image files with a Core ML model, on Linux, as the app would.

28x28 grayscale models get the app's photo preparation by default (`preprocess.prepare_photo`:
grayscale, illumination corrected, dark ink inverted, largest ink component cropped, fitted into
20x20 and centred by mass), and each result says what was done; `raw=True` only resizes.
Colour models always get a plain resize to the model's input size.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from kerasml.errors import KerasmlError


@dataclasses.dataclass
class Prediction:
    image: str
    top: list[tuple[str, float]]     # (label, probability), most likely first
    notes: list[str] = dataclasses.field(default_factory=list)   # how the image was prepared

    @property
    def class_label(self) -> str:
        return self.top[0][0]


def predict(model_path: Path, images: list[Path], top: int = 3, raw: bool = False) -> list[Prediction]:
    from kerasml.preprocess import load_picture, prepare_image, prepare_photo
    from kerasml.runtime import load_model

    if not images:
        raise KerasmlError("give at least one image file to classify")
    if top < 1:
        raise KerasmlError(f"--top {top} must be at least 1")
    model = load_model(Path(model_path))
    if model.image is None or model.labels is None:
        raise KerasmlError(f"{model_path} is not an image classifier (it needs an image input and class labels)")
    size = (model.image.height, model.image.width)
    mnist_style = model.image.channels == 1 and size == (28, 28) and not raw
    inputs, notes = [], []
    for path in images:
        if mnist_style:
            prepared = prepare_photo(load_picture(path))
            inputs.append(prepared.image)
            notes.append(prepared.notes)
        else:
            inputs.append(prepare_image(path, raw=True, size=size) if model.image.channels == 1
                          else _rgb(Path(path), size))
            notes.append([f"resized to {size[1]}x{size[0]}"])
    probabilities = model.predict_probabilities(np.stack(inputs))
    labels = [str(label) for label in model.labels]
    results = []
    for path, row, said in zip(images, probabilities, notes):
        order = np.argsort(row)[::-1][:top]
        results.append(Prediction(str(path), [(labels[i], float(row[i])) for i in order], said))
    return results


def _rgb(path: Path, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not path.is_file():
        raise KerasmlError(f"{path} does not exist or is not a file; give a PNG or JPEG image")
    try:
        with Image.open(path) as opened:
            picture = ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise KerasmlError(f"cannot read {path} as an image ({exc}); give a PNG or JPEG file") from None
    return np.asarray(picture.resize((size[1], size[0]), Image.Resampling.BILINEAR), dtype=np.uint8)
