"""Prove that a converted Core ML model computes what its Keras model computes.

Both models see the same raw 0-255 images (compare.py); the result reads as a checklist, one line
per check.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from kerasml.model import precision as schemes
from kerasml.model.features import PROBABILITY_OUTPUT
from kerasml.model.images import comparison_images
from kerasml.checks.compare import compare
from kerasml.errors import KerasmlError
from kerasml.record import metadata_key


@dataclasses.dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclasses.dataclass
class VerifyResult:
    coreml: str
    keras: str
    samples: int
    images: str
    precision: str
    atol: float
    min_agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float | None       # over decisive images only; None when every image is a near-tie
    keras_accuracy: float | None
    coreml_accuracy: float | None
    checks: list[Check]
    near_ties: int = 0                 # images whose best Keras class leads by no more than atol
    columns: dict | None = None        # Keras and each runtime that computed the model, side by side
    runtime: str = ""                  # what computed the converted model: kerasml's runtime or Apple's
    kind: str = "Core ML"              # the converted model's format: Core ML or Core AI

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def lines(self) -> list[str]:
        lines = [f"verifying {self.coreml}, run by the {self.runtime}, against {self.keras} on {self.samples} {self.images}"]
        lines += [f"  [{'✓' if c.passed else 'x'}] {c.name}: {c.detail}" for c in self.checks]
        if self.columns:
            lines += _column_lines(self.columns)
        if self.passed:
            lines.append(f"passed: the {self.kind} model computes what the Keras model computes "
                         f"(max |Δp| {self.max_abs_diff:.2e} <= {self.atol:g})")
        else:
            failed = ", ".join(c.name for c in self.checks if not c.passed)
            lines.append(f"failed: {failed}")
        return lines

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["passed"] = self.passed
        return data


def verify(coreml_path: Path, keras_path: Path, data: Path | None = None, samples: int | None = None,
           atol: float | None = None, unsafe: bool = False) -> VerifyResult:
    coreml, keras_model = _load_pair(coreml_path, keras_path, unsafe)
    image = coreml.image
    images = comparison_images((image.height, image.width, image.channels), data, samples)
    checks = _fit_checks(coreml, keras_model, coreml_path, keras_path)
    comparison = compare(coreml, keras_model, *images)
    expected, actual, labels, images = comparison.expected, comparison.actual, comparison.labels, comparison.images

    # The tolerance of kerasml's own scheme, recorded by convert; else of what the weights are stored as.
    precision = coreml.weight_precision
    scheme = schemes.parse_label(coreml.creator_defined.get(metadata_key("precision"), ""))
    if scheme is not None:
        precision = schemes.label(*scheme)
    default_atol, min_agreement = schemes.tolerance(*(scheme or (schemes.stored_scheme(precision), None)))
    atol = default_atol if atol is None else atol
    difference = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    max_diff, mean_diff = float(difference.max()), float(difference.mean())
    checks.append(Check("probabilities", bool(np.allclose(actual.sum(axis=1), 1, atol=1e-3)) or not keras_model.ends_in_softmax,
                        f"rows sum to {actual.sum(axis=1).min():.6f}-{actual.sum(axis=1).max():.6f}"))
    checks.append(Check("values", max_diff <= atol,
                        f"max |Δp| {max_diff:.3e}, mean {mean_diff:.3e} (tolerance {atol:g} for {precision} weights)"))
    worst = int(difference.max(axis=1).argmax())
    if max_diff > atol:
        checks[-1].detail += (f"; worst image #{worst}: Keras {expected[worst].max():.6f} "
                              f"for {expected[worst].argmax()}, {coreml.kind} {actual[worst].max():.6f} for {actual[worst].argmax()}")
    top1 = top1_check(expected, actual, atol, min_agreement)
    checks.append(top1.check)
    keras_accuracy, coreml_accuracy = comparison.keras_accuracy, comparison.coreml_accuracy
    if labels is not None:
        checks.append(Check("accuracy", True, f"Keras {keras_accuracy:.2%}, {coreml.kind} {coreml_accuracy:.2%}"))
    computed = [(coreml.runtime_name, actual)]
    apple = core_ml_probabilities(Path(coreml_path), images, coreml) if coreml.model_type != "aimodel" else None
    if apple is not None:
        computed.append(("Apple Core ML", apple))
        runtime_gap = float(np.abs(apple.astype(np.float64) - actual).max())
        checks.append(Check("Core ML", runtime_gap <= atol,
                            f"Apple's Core ML against the kerasml runtime: max |Δp| {runtime_gap:.3e} "
                            f"(tolerance {atol:g})"))
    columns = _columns(expected, computed, labels)
    return VerifyResult(str(coreml_path), str(keras_path), len(images), comparison.source, precision, atol,
                        min_agreement, max_diff, mean_diff, top1.agreement, keras_accuracy, coreml_accuracy,
                        checks, near_ties=top1.near_ties, columns=columns,
                        runtime=f"{coreml.runtime_name} ({coreml.runtime_detail})", kind=coreml.kind)


def _load_pair(coreml_path: Path, keras_path: Path, unsafe: bool):
    """The converted model (an image classifier: Core ML for kerasml's runtime, Core AI for Apple's) and
    the Keras model it came from."""
    from kerasml.checks.compare import load_classifier
    from kerasml.model.keras_models import load_keras_model

    coreml = load_classifier(Path(coreml_path))
    return coreml, load_keras_model(Path(keras_path), unsafe=unsafe)


def _fit_checks(coreml, keras_model, coreml_path: Path, keras_path: Path) -> list[Check]:
    """Input size and class count of the two models, refused in one line when they differ."""
    image = coreml.image
    keras_size = int(np.prod(keras_model.input_shape))
    shape_ok = keras_size == image.height * image.width * image.channels
    checks = [Check("input", shape_ok, f"{coreml.kind} {image.width}x{image.height} {image.colour} image, "
                                       f"Keras {keras_model.input_shape}")]
    classes = len(coreml.labels) if coreml.labels is not None else None
    checks.append(Check("outputs", classes == keras_model.output_size,
                        f"{coreml.kind} {classes} labels, Keras {keras_model.output_size} outputs"))
    if not all(check.passed for check in checks):
        raise KerasmlError(f"{coreml_path} and {keras_path} do not fit together "
                           f"({'; '.join(c.detail for c in checks if not c.passed)}); is this the right Keras model?")
    return checks


@dataclasses.dataclass
class TopOne:
    check: Check
    agreement: float | None
    near_ties: int


def top1_check(expected: np.ndarray, actual: np.ndarray, atol: float, min_agreement: float) -> TopOne:
    """Top-1 agreement on the images where Keras' best class leads its second by more than `atol`.

    Below that margin a difference the values check allows can swap the two best classes, so those
    near-ties say nothing about the conversion: they are counted and reported, not held against it.
    (An untrained network's near-uniform outputs are all near-ties.)
    """
    ordered = np.sort(expected, axis=1)
    margin = ordered[:, -1] - ordered[:, -2] if expected.shape[1] > 1 else np.full(len(expected), np.inf)
    decisive = margin > atol
    ties = int((~decisive).sum())
    if not decisive.any():
        return TopOne(Check("top-1", True, f"not measured: all {len(expected)} images are near-ties (Keras' "
                                           f"best class leads by at most {atol:g}); the values check decides"),
                      None, ties)
    agree = float((actual[decisive].argmax(axis=1) == expected[decisive].argmax(axis=1)).mean())
    detail = f"{agree:.2%} of predictions agree (at least {min_agreement:.1%} needed)"
    if ties:
        detail += f"; {ties} near-tie{'s' if ties != 1 else ''} (lead <= {atol:g}) not counted"
    return TopOne(Check("top-1", agree >= min_agreement, detail), agree, ties)


def core_ml_probabilities(path: Path, images: np.ndarray, runtime_model) -> np.ndarray | None:
    """Apple's own Core ML predictions, where Core ML exists (macOS); None elsewhere."""
    import platform

    if platform.system() != "Darwin":
        return None
    from PIL import Image

    from kerasml.libs import coremltools

    model = coremltools().models.MLModel(str(path))
    labels = list(runtime_model.labels)
    name, probabilities = runtime_model.input_name, runtime_model.output_names
    key = next((n for n in probabilities if n == PROBABILITY_OUTPUT), None)
    rows = []
    for pixels in images:
        picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        output = model.predict({name: picture})
        scores = output[key] if key else next(v for v in output.values() if isinstance(v, dict))
        rows.append([scores[label] for label in labels])
    return np.asarray(rows, dtype=np.float64)


def _columns(keras: np.ndarray, computed: list[tuple[str, np.ndarray]], labels) -> dict:
    """Keras and every runtime that computed the converted model, side by side, each column named
    by what computed it: agreement with Keras, max |Δp|, accuracy."""
    columns = {}
    for name, values in [("Keras", keras), *computed]:
        columns[name] = {
            "top-1 = Keras": float((values.argmax(1) == keras.argmax(1)).mean()),
            "max |Δp| vs Keras": float(np.abs(values.astype(np.float64) - keras).max()),
            "accuracy": None if labels is None else float((values.argmax(1) == labels).mean())}
    return columns


def _column_lines(columns: dict) -> list[str]:
    names = list(columns)
    width = max(18, *(len(name) + 2 for name in names))
    lines = ["  " + " " * 20 + "".join(f"{name:>{width}}" for name in names)]
    for row in columns[names[0]]:
        cells = []
        for name in names:
            value = columns[name][row]
            cells.append("-" if value is None else f"{value:.2%}" if row != "max |Δp| vs Keras" else f"{value:.2e}")
        lines.append(f"  {row:<20}" + "".join(f"{cell:>{width}}" for cell in cells))
    return lines


def accuracy_change(coreml_path: Path, keras_path: Path, data: Path, unsafe: bool = False) -> dict:
    """What a lower weight precision costs: Keras (fp32) against the Core ML model on labelled data."""
    coreml, keras_model = _load_pair(coreml_path, keras_path, unsafe)
    image = coreml.image
    comparison = compare(coreml, keras_model, *comparison_images((image.height, image.width, image.channels), Path(data)))
    keras_accuracy, coreml_accuracy = comparison.keras_accuracy, comparison.coreml_accuracy
    return {"samples": len(comparison.images), "source": comparison.source, "keras_accuracy": keras_accuracy,
            "coreml_accuracy": coreml_accuracy,
            "points_change": round(100 * (coreml_accuracy - keras_accuracy), 4)}
