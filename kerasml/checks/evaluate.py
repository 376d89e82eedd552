"""Accuracy of any Core ML image classifier on labelled images, computed on Linux.

Works for models made elsewhere too: the runtime reads the model's own image size, colour,
scale and labels. Data label i means the model's i-th class label.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from kerasml.checks.compare import load_classifier
from kerasml.model.images import labelled_images
from kerasml.errors import KerasmlError

BATCH = 1000


@dataclasses.dataclass
class EvaluateResult:
    model: str
    data: str
    samples: int
    accuracy: float
    per_class: dict[str, float]
    confused: list[dict]             # worst-confused (true, predicted, count), most frequent first
    confusion: list[list[int]]
    confusion_png: str | None
    seconds: float

    def lines(self) -> list[str]:
        lines = [f"{self.model} on {self.samples:,} images from {self.data}: accuracy {self.accuracy:.2%} "
                 f"({self.seconds:.2f} s)", "per class:"]
        lines += [f"  {label:<16} {accuracy:7.2%}" for label, accuracy in self.per_class.items()]
        if self.confused:
            lines.append("most confused:")
            lines += [f"  {c['true']} taken for {c['predicted']}: {c['count']} times" for c in self.confused]
        if self.confusion_png:
            lines.append(f"confusion matrix: {self.confusion_png}")
        return lines

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def evaluate(model_path: Path, data: Path | None = None, plot: Path | None = None,
             progress: Callable[[int, int], None] | None = None) -> EvaluateResult:
    """Accuracy of the model on `data`; the confusion matrix goes to `plot` (default: beside the
    model, `<model>.confusion.png`)."""
    import time

    from kerasml.record import model_stem
    from kerasml.plots import confusion_matrix, plot_confusion

    model = load_classifier(Path(model_path))
    image = model.image
    x, y, source = labelled_images((image.height, image.width, image.channels), data)
    if y.max() >= len(model.labels):
        raise KerasmlError(f"the data has label {y.max()} but the model knows only {len(model.labels)} classes")
    started = time.perf_counter()
    predictions = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), BATCH):
        predictions[start:start + BATCH] = model.predict_probabilities(x[start:start + BATCH]).argmax(axis=1)
        if progress:
            progress(min(start + BATCH, len(x)), len(x))
    seconds = time.perf_counter() - started
    labels = [str(label) for label in model.labels]
    matrix = confusion_matrix(y, predictions, len(labels))
    totals = matrix.sum(axis=1)
    per_class = {labels[i]: float(matrix[i, i] / totals[i]) for i in range(len(labels)) if totals[i]}
    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, 0)
    confused = []
    for flat in np.argsort(off_diagonal, axis=None)[::-1][:5]:
        true, predicted = np.unravel_index(flat, matrix.shape)
        if off_diagonal[true, predicted]:
            confused.append({"true": labels[true], "predicted": labels[predicted],
                             "count": int(off_diagonal[true, predicted])})
    accuracy = float((predictions == y).mean())
    if plot is None:
        plot = Path(model_path).with_name(model_stem(Path(model_path)) + ".confusion.png")
    png = str(plot_confusion(matrix, labels, plot, title=f"{Path(model_path).name}: "
                             f"{accuracy:.2%} on {len(x):,} images"))
    return EvaluateResult(str(model_path), source, len(x), accuracy, per_class, confused,
                          matrix.tolist(), png, seconds)


def _channels_last(images: np.ndarray) -> np.ndarray:
    return images if images.ndim == 4 else images[..., np.newaxis]
