"""The model behind the page: loaded once, checked, described, and run — a Core ML model by kerasml's
runtime, a Core AI .aimodel by Apple's."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from kerasml.errors import KerasmlError
from kerasml.record import metadata_key
from kerasml import preprocess
from kerasml.app import reading
from kerasml.web import photo


class TryModel:
    """An image classifier (Core ML or Core AI), ready to read drawings and photos as the app would."""

    def __init__(self, path: Path):
        from kerasml.checks.compare import load_classifier

        self.path = Path(path)
        try:
            self.model = load_classifier(self.path)
        except KerasmlError as exc:
            if "is not an image classifier" in str(exc):
                raise KerasmlError(f"{exc}; kerasml try shows image classifiers only") from None
            raise
        image = self.model.image
        self.image = image
        self.labels = [str(label) for label in self.model.labels]
        # As `kerasml predict`: 28x28 grayscale models get MNIST-style preparation, so they can be drawn on.
        self.drawing = image.channels == 1 and (image.height, image.width) == (28, 28)
        self.digits = preprocess.reads_digits(self.labels)   # photos: the digit preparation only for these
        self.noun = "digit" if self.digits else ("drawing" if self.drawing else "image")
        self._lock = threading.Lock()   # one prediction at a time: the page reads after every stroke
        self.classify(np.zeros((image.height, image.width, image.channels), np.uint8))  # fails now, not later

    def classify(self, image: np.ndarray) -> reading.Reading:
        """The app's reading of one prepared image: top three, then the confidence threshold."""
        with self._lock:
            probabilities = self.model.predict_probabilities(image[np.newaxis])[0]
        return reading.judge(reading.rank(probabilities, self.labels))

    def read_strokes(self, strokes, canvas_side: float) -> tuple[reading.Reading, np.ndarray | None]:
        """(reading, 28x28 model input or None when the model was not asked)."""
        if not self.drawing:
            raise KerasmlError(f"this model takes {self.describe_input()} images, not drawings; "
                               "send a photo or image file instead")
        early, prepared = reading.prepare_sketch(strokes, canvas_side)
        return (early, None) if early else (self.classify(prepared), prepared)

    def read_photo(self, data: bytes) -> tuple[reading.Reading, photo.PhotoPreparation]:
        picture = photo.open_upload(data, min_side=preprocess.decode_side(self.image.height, self.image.width))
        prepared = photo.prepare_upload(picture, self.image.height, self.image.width, self.image.channels,
                                        digits=self.digits)
        if self.digits and self.drawing and not prepared.image.any():
            return reading.Reading(reading.EMPTY), prepared
        return self.classify(prepared.image), prepared

    def describe_input(self) -> str:
        return f"{self.image.width}x{self.image.height} {self.image.colour}"

    def card(self) -> dict:
        """The model card: the model's own metadata (Core ML's, or Core AI's) and the `com.kerasml.*`
        keys convert writes, and which framework and runtime compute it here."""
        about, user = self.model.about, self.model.creator_defined
        try:
            accuracy = float(user.get(metadata_key("test_accuracy"), ""))
        except ValueError:
            accuracy = None
        return {
            "name": self.path.name,
            "description": about["description"],
            "author": about["author"],
            "license": about["license"],
            "version": about["version"],
            "labels": self.labels,
            "input": f"{self.image.name}: {self.describe_input()}",
            "test_accuracy": accuracy,
            "dataset": user.get(metadata_key("dataset")) or None,
            "architecture": user.get(metadata_key("architecture")) or None,
            "mode": "drawing" if self.drawing else "photo",
            "noun": self.noun,
            "framework": self.model.kind,
            "runtime": f"{self.model.runtime_name} ({self.model.runtime_detail})",
        }
