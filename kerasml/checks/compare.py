"""What verify, evaluate and predict share: a Core ML classifier loaded and checked, labelled images
of the size it takes, and the one comparison of a Keras model with its Core ML conversion.

Both models see the same raw 0-255 images: the Core ML model through its own stored image
preprocessing (run by kerasml's NumPy runtime, so this works on Linux), the Keras model through
the same channel order, scale and bias (`Preprocessing.scale_pixels`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from kerasml.errors import KerasmlError
from kerasml.record import Preprocessing


def load_classifier(path: Path):
    """The converted model at `path`, refused unless it is an image classifier: a Core AI `.aimodel`
    run by Apple's runtime, or a Core ML model run by kerasml's."""
    path = Path(path)
    if path.suffix == ".aimodel":
        from kerasml.coreai.runtime import load_aimodel

        return load_aimodel(path)
    from kerasml.runtime import load_model

    model = load_model(path)
    if model.image is None or model.labels is None:
        raise KerasmlError(f"{path} is not an image classifier (it needs an image input and class labels)")
    return model


def image_preprocessing(image) -> Preprocessing:
    """The Core ML model's image input (runtime `ImageInput`) as kerasml's Preprocessing."""
    return Preprocessing(height=image.height, width=image.width, channels=image.channels, scale=image.scale,
                         bias=list(image.bias), channel_order="bgr" if image.colour == "bgr" else "rgb")


@dataclasses.dataclass
class Comparison:
    """Both models' outputs for the same raw images, row by row."""

    images: np.ndarray
    labels: np.ndarray | None          # the true classes, when the images came labelled
    source: str                        # which images, in words
    expected: np.ndarray               # Keras
    actual: np.ndarray                 # Core ML, run by kerasml's runtime

    def accuracy(self, probabilities: np.ndarray) -> float | None:
        if self.labels is None:
            return None
        return float((probabilities.argmax(axis=1) == self.labels).mean())

    @property
    def keras_accuracy(self) -> float | None:
        return self.accuracy(self.expected)

    @property
    def coreml_accuracy(self) -> float | None:
        return self.accuracy(self.actual)


def compare(coreml, keras_model, images: np.ndarray, labels: np.ndarray | None, source: str) -> Comparison:
    """Run both models on `images`. When the Keras model ends in logits and the Core ML model gives
    probabilities (convert added the softmax), the Keras outputs get the same softmax."""
    pixels = image_preprocessing(coreml.image).scale_pixels(images)
    expected = keras_model.predict(pixels.reshape((len(images), *keras_model.input_shape)))
    actual = coreml.predict_probabilities(images)
    if not keras_model.ends_in_softmax and np.allclose(actual.sum(axis=1), 1, atol=1e-3):
        expected = softmax(expected)
    return Comparison(images, labels, source, expected, actual)


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
