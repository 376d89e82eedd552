"""Classify image files with a Core ML model, on Linux, as the app would.

28x28 grayscale digit models (their labels are 0-9) get the app's photo preparation by default
(`preprocess.prepare_photo`: grayscale, illumination corrected, dark ink inverted, largest ink
component cropped, fitted into 20x20 and centred by mass); other grayscale models, and every model
with `raw=True`, are only resized after dark-on-light pictures are inverted. Each result says what
was done.
Colour models always get a plain resize to the model's input size. Guesses are ranked as the app
ranks them (`app.reading.rank`: ties to the smaller label).
Files are opened as the `kerasml try` page opens uploads (`kerasml.data.images`): a big JPEG at
reduced scale (a note says so), in bounded memory; over 40 megapixels, animated, damaged or not
PNG/JPEG/GIF/BMP/WebP/PPM, one clear error.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from kerasml.app.reading import rank
from kerasml.checks.compare import load_classifier
from kerasml.errors import KerasmlError


@dataclasses.dataclass
class Prediction:
    image: str
    top: list[tuple[str, float]]     # (label, probability), most likely first
    notes: list[str] = dataclasses.field(default_factory=list)   # how the image was prepared

    @property
    def class_label(self) -> str:
        return self.top[0][0]

    def lines(self) -> list[str]:
        lines = [f"{self.image}: {self.class_label}", f"  prepared: {'; '.join(self.notes)}"]
        lines += [f"  {label:<12} {probability:7.2%}  {'█' * round(probability * 30)}" for label, probability in self.top]
        return lines

    def to_dict(self) -> dict:
        return {"image": self.image, "classLabel": self.class_label, "prepared": self.notes,
                "top": [{"label": label, "probability": p} for label, p in self.top]}


def predict(model_path: Path, images: list[Path], top: int = 3, raw: bool = False) -> list[Prediction]:
    from kerasml.data.images import open_image
    from kerasml.preprocess import decode_side, prepare_picture, reads_digits

    if not images:
        raise KerasmlError("give at least one image file to classify")
    if top < 1:
        raise KerasmlError(f"--top {top} must be at least 1")
    model = load_classifier(Path(model_path))
    shape = (model.image.height, model.image.width, model.image.channels)
    digits = reads_digits(model.labels)
    inputs, notes = [], []
    for path in images:
        picture = open_image(path, min_side=decode_side(*shape[:2]))    # a big JPEG: at reduced scale
        prepared = prepare_picture(picture, *shape, raw=raw, digits=digits)
        del picture                                                      # one full-size picture at a time
        inputs.append(prepared.image)
        notes.append(prepared.notes)
    probabilities = model.predict_probabilities(np.stack(inputs))
    labels = [str(label) for label in model.labels]
    results = []
    for path, row, said in zip(images, probabilities, notes):   # ranked as the app ranks, ties to the smaller label
        results.append(Prediction(str(path), rank(row, labels, top), said))
    return results
