"""A visual report of a trained model: what it learned, where it fails, and why.

`report` is the stage's one public function. It reads the model, its training record and its
history when they are beside it, predicts on the data's test split (else the seeded validation
split, else all the images) and writes into `<model name>.report/`, built in a temporary folder and
renamed into place. The model is a Keras model (predicted with Keras) or a converted one — Core ML
run by kerasml's runtime, Core AI by Apple's — whose Keras source, when it lies beside it (the
model's `com.kerasml.source_file`), gives the record, the curves and the filters:

- curves.png         loss and accuracy per epoch (from `<name>.history.json`)
- confusion.png      true against predicted classes
- per_class.png      accuracy of each class
- mistakes.png       the most confident mistakes, with true and predicted labels
- filters.png        the first convolution layer's filters
- feature_maps.png   what that layer makes of one image
- report.md          all of the above, linked, with the numbers as tables
"""

from __future__ import annotations

import dataclasses
import heapq
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from kerasml.data.splits import decoding_errors, split_validation
from kerasml.errors import KerasmlError
from kerasml.files import atomic_output, check_output
from kerasml.model.images import labelled_source
from kerasml.record import DIGITS, Preprocessing, TrainingRecord, model_stem, read_record
from kerasml.report.figures import write_figures
from kerasml.plots import confusion_matrix

WORST = 16          # images in the mistakes grid
BATCH = 256


@dataclasses.dataclass
class ReportResult:
    folder: Path
    markdown: Path
    pictures: list[Path]
    samples: int
    images: str                       # which images were predicted
    accuracy: float
    notes: list[str]

    def lines(self) -> list[str]:
        lines = [f"accuracy {self.accuracy:.2%} on {self.samples:,} images ({self.images})"]
        lines += self.notes
        lines.append(f"wrote {self.markdown} with {len(self.pictures)} pictures:")
        lines += [f"  {path}" for path in self.pictures]
        return lines


def report(model: Path, data: Path | None = None, out_dir: Path | None = None, force: bool = False,
           samples: int | None = None, unsafe: bool = False,
           say: Callable[[str], None] = print) -> ReportResult:
    model = Path(model)
    stem = model_stem(model)
    folder = Path(out_dir) if out_dir is not None else model.with_name(stem + ".report")
    if not model.exists():
        raise KerasmlError(f"model {model} not found")
    check_output(folder, force)
    if samples is not None and samples < 1:
        raise KerasmlError("--samples must be at least 1")
    subject = _Subject(model, unsafe)
    record, preprocessing, labels, notes = subject.record, subject.preprocessing, subject.labels, subject.notes
    height, width, channels = preprocessing.height, preprocessing.width, preprocessing.channels

    # Predict: keep every label and probability, but only the most confident mistakes' pixels.
    dataset, batches, what = _evaluation_images(record, data, (height, width, channels), samples, say)
    if dataset.folders is not None and dataset.labels != labels:
        raise KerasmlError(f"the data's class folders ({', '.join(dataset.labels[:5])}, ...) are not the "
                           f"model's labels ({', '.join(labels[:5])}, ...); pass --data with the same classes")
    truths, probabilities, worst, example, seen = [], [], [], None, 0
    with decoding_errors(dataset):
        for x, y in batches:
            if len(y) and y.max() >= len(labels):
                raise KerasmlError(f"the data has label {y.max()} but the model knows {len(labels)} classes")
            p = subject.predict(x)
            if example is None:
                example = (x[0], int(y[0]))
            _keep_worst(worst, x, y, p, offset=seen)
            seen += len(y)
            truths.append(y)
            probabilities.append(p)
    y_true, probs = np.concatenate(truths), np.concatenate(probabilities)
    y_pred = probs.argmax(axis=1)
    accuracy = float((y_pred == y_true).mean())
    matrix = confusion_matrix(y_true, y_pred, len(labels))
    per_class = {label: (float(matrix[i, i] / matrix[i].sum()) if matrix[i].sum() else None, int(matrix[i].sum()))
                 for i, label in enumerate(labels)}

    mistakes = sorted(worst, reverse=True)
    with atomic_output(folder, force=force, directory=True) as temporary:
        pictures = write_figures(temporary, subject.keras_path or model, subject.keras_model, matrix, labels,
                                 accuracy, per_class, mistakes, example, preprocessing, notes)
        (temporary / "report.md").write_text(
            _markdown(model, record, what, accuracy, len(y_true), per_class, mistakes, pictures, notes),
            encoding="utf-8")
    final = [folder / path.name for path in pictures.values()]
    return ReportResult(folder, folder / "report.md", final, len(y_true), what, accuracy, notes)


class _Subject:
    """What the report is about: a Keras model, or a converted model and its Keras source when found."""

    CONVERTED = (".mlmodel", ".mlpackage", ".aimodel")

    def __init__(self, model: Path, unsafe: bool):
        from kerasml.model.keras_models import image_shape_for, load_keras_model

        self.converted, self.notes = None, []
        self.keras_path: Path | None = model
        if model.suffix in self.CONVERTED:
            from kerasml.checks.compare import image_preprocessing, load_classifier

            self.converted = load_classifier(model)
            source = self.converted.creator_defined.get("com.kerasml.source_file")
            self.keras_path = model.with_name(source) if source and model.with_name(source).is_file() else None
            self.notes.append(f"note: predicted by the {self.converted.runtime_name} "
                              f"({self.converted.runtime_detail}) from {model.name}")
        loaded = load_keras_model(self.keras_path, unsafe=unsafe) if self.keras_path else None
        self.keras_model = loaded.keras_model if loaded else None
        self.record = read_record(self.keras_path) if self.keras_path else None
        self._loaded = loaded
        if self.converted is not None:
            self.preprocessing = self.record.preprocessing if self.record else image_preprocessing(self.converted.image)
            self.labels = [str(label) for label in self.converted.labels]
            return
        height, width, channels = image_shape_for(loaded, None)
        self.preprocessing = self.record.preprocessing if self.record else Preprocessing(
            height, width, channels, bias=[0.0] * channels)
        self.labels = (self.record.labels if self.record and self.record.labels else
                       list(DIGITS) if loaded.output_size == 10 else [str(i) for i in range(loaded.output_size)])
        if not self.record:
            self.notes.append(f"note: no training record beside {model}; assuming pixels/255 and labels "
                              f"{', '.join(self.labels[:3])}, ...")

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for raw 0-255 images."""
        if self.converted is not None:
            return self.converted.predict_probabilities(x)
        return self._loaded.predict(self.preprocessing.scale_pixels(x).reshape((len(x), *self._loaded.input_shape)))


def _keep_worst(heap: list, x: np.ndarray, y: np.ndarray, p: np.ndarray, offset: int) -> None:
    """Keep the `WORST` most confident mistakes (or, while there are none, the least confident
    right answers, ranked below every mistake) in a min-heap of (rank, index, ...)."""
    predicted = p.argmax(axis=1)
    for i in range(len(y)):
        confidence = float(p[i, predicted[i]])
        rank = confidence if predicted[i] != y[i] else -1.0 - confidence
        item = (rank, offset + i, x[i], int(y[i]), int(predicted[i]), confidence)
        if len(heap) < WORST:
            heapq.heappush(heap, item)
        elif rank > heap[0][0]:
            heapq.heapreplace(heap, item)


def _evaluation_images(record: TrainingRecord | None, data: Path | None, shape: tuple[int, int, int],
                       samples: int | None, say) -> tuple[object, Iterator, str]:
    """The dataset (model/images.py's policy) and batches of (uint8 images, labels) from its test
    split, else the validation split the model was trained without (same seed), else every image;
    folders are decoded as they stream."""
    source = labelled_source(shape, data, record, say)
    dataset, same_data = source.dataset, source.trained_on
    seed, fraction = (record.seed, record.extra.get("val_split")) if record else (None, None)
    can_split = same_data and seed is not None and fraction is not None

    if dataset.folders is not None:
        folders = dataset.folders
        if folders.test is not None:
            files, what = folders.test, "test split"
        elif can_split:
            files, what = folders.split_validation(fraction, seed)[1], "validation split (no test split)"
        else:
            files, what = folders.train, "all images (no test split)"
        if samples is not None and samples < len(files):
            files = files.subset(np.sort(np.random.default_rng(0).permutation(len(files))[:samples]))
        if folders.channels != shape[2]:
            raise KerasmlError(f"the data is {'grayscale' if folders.channels == 1 else 'colour'} but the "
                               f"model takes {shape[2]} channels")
        stream = folders.dataset(files, shape[0]).batch(64).as_numpy_iterator()
        return dataset, stream, f"{source.what}: {what}"

    if dataset.x_test is not None:
        x, y, what = dataset.x_test, dataset.y_test, "test split"
    elif can_split:
        _, _, x, y = split_validation(dataset, fraction, seed)
        what = "validation split (no test split)"
    else:
        x, y, what = dataset.x_train, dataset.y_train, "all images (no test split)"
    if x.shape[1:] != shape:
        raise KerasmlError(f"the data's images are {'x'.join(map(str, x.shape[1:]))} but the model takes "
                           f"{'x'.join(map(str, shape))}; pass --data with images of that size")
    if samples is not None:
        x, y = x[:samples], y[:samples]
    return dataset, ((x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, len(x), BATCH)), f"{source.what}: {what}"


def _markdown(model: Path, record: TrainingRecord | None, what: str, accuracy: float, count: int,
              per_class: dict, mistakes: list, pictures: dict[str, Path], notes: list[str]) -> str:
    lines = [f"# Report: {model.name}", ""]
    if record:
        lines += [f"{record.architecture} with {record.parameters:,} parameters, trained on {record.dataset} "
                  f"({record.preprocessing.describe()}) for {record.epochs_run} epochs; validation accuracy "
                  f"{record.validation.get('accuracy', 0.0):.2%}.", ""]
    lines += [f"**Accuracy {accuracy:.2%}** on {count:,} images ({what}).", ""]
    lines += [f"> {note}" for note in notes] + ([""] if notes else [])
    sections = [("curves", "Training curves", "Loss and accuracy per epoch, training against validation."),
                ("confusion", "Confusion matrix", "Rows are the true classes, columns the predictions."),
                ("per_class", "Accuracy per class", None),
                ("mistakes", "Most confident mistakes", "Red titles are mistakes, green ones right answers; "
                 "# is the image's position among the images predicted."),
                ("filters", "First-layer filters", "Each filter's weights, scaled to black-white (or colour)."),
                ("feature_maps", "Feature maps", "The first convolution layer's output for one image.")]
    for key, title, caption in sections:
        if key not in pictures:
            continue
        if key == "mistakes" and all(m[3] == m[4] for m in mistakes):
            title, caption = "No mistakes", "The least confident right answers instead."
        lines += [f"## {title}", ""]
        if caption:
            lines += [caption, ""]
        lines += [f"![{title}]({pictures[key].name})", ""]
        if key == "per_class":
            lines += ["| class | images | accuracy |", "|---|---:|---:|"]
            lines += [f"| {label} | {n} | {'-' if a is None else f'{a:.2%}'} |" for label, (a, n) in per_class.items()]
            lines.append("")
    return "\n".join(lines)
