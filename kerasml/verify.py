"""Prove that a converted Core ML model computes what its Keras model computes.

Both models see the same raw 0-255 images: the Core ML model through its own stored image
preprocessing (run by kerasml's NumPy runtime, so this works on Linux), the Keras model through
the same scale and bias applied by hand. The result reads as a checklist, one line per check.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from kerasml.errors import KerasmlError

# Default tolerances by weight precision: max |Δ probability| and the least top-1 agreement.
# fp32 must match Keras to float rounding; fp16 keeps about 3 significant digits; 8-bit weights
# move probabilities by up to a few percent and may flip genuinely ambiguous images.
TOLERANCES = {"float32": (1e-5, 1.0), "float16": (5e-3, 0.998), "int8": (5e-2, 0.99),
              "int4": (0.1, 0.97), "lut": (5e-2, 0.99)}


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
    top1_agreement: float
    keras_accuracy: float | None
    coreml_accuracy: float | None
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def lines(self) -> list[str]:
        lines = [f"verifying {self.coreml} against {self.keras} on {self.samples} {self.images}"]
        lines += [f"  [{'✓' if c.passed else 'x'}] {c.name}: {c.detail}" for c in self.checks]
        if self.passed:
            lines.append(f"passed: the Core ML model computes what the Keras model computes "
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
    from kerasml.keras_models import load_keras_model
    from kerasml.runtime import load_model

    coreml = load_model(Path(coreml_path))
    if coreml.image is None:
        raise KerasmlError(f"{coreml_path} has no image input; kerasml verifies image classifiers")
    keras_model = load_keras_model(Path(keras_path), unsafe=unsafe)
    image = coreml.image
    images, labels, source = _images_for(image.height, image.width, image.channels, data, samples)
    checks: list[Check] = []

    keras_size = int(np.prod(keras_model.input_shape))
    shape_ok = keras_size == image.height * image.width * image.channels
    checks.append(Check("input", shape_ok, f"Core ML {image.width}x{image.height} {image.colour} image, "
                                           f"Keras {keras_model.input_shape}"))
    classes = len(coreml.labels) if coreml.labels is not None else None
    checks.append(Check("outputs", classes == keras_model.output_size,
                        f"Core ML {classes} labels, Keras {keras_model.output_size} outputs"))
    if not all(check.passed for check in checks):
        raise KerasmlError(f"{coreml_path} and {keras_path} do not fit together "
                           f"({'; '.join(c.detail for c in checks if not c.passed)}); is this the right Keras model?")

    expected = _keras_outputs(keras_model, image, images)
    actual = coreml.predict_probabilities(images)
    if not keras_model.ends_in_softmax and np.allclose(actual.sum(axis=1), 1, atol=1e-3):
        expected = _softmax(expected)  # the converter added the softmax the Keras model lacks

    precision = coreml.weight_precision
    default_atol, min_agreement = TOLERANCES.get(precision, TOLERANCES["lut"])
    atol = default_atol if atol is None else atol
    difference = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    max_diff, mean_diff = float(difference.max()), float(difference.mean())
    agreement = float((actual.argmax(axis=1) == expected.argmax(axis=1)).mean())
    checks.append(Check("probabilities", bool(np.allclose(actual.sum(axis=1), 1, atol=1e-3)) or not keras_model.ends_in_softmax,
                        f"rows sum to {actual.sum(axis=1).min():.6f}-{actual.sum(axis=1).max():.6f}"))
    checks.append(Check("values", max_diff <= atol,
                        f"max |Δp| {max_diff:.3e}, mean {mean_diff:.3e} (tolerance {atol:g} for {precision} weights)"))
    worst = int(difference.max(axis=1).argmax())
    if max_diff > atol:
        checks[-1].detail += (f"; worst image #{worst}: Keras {expected[worst].max():.6f} "
                              f"for {expected[worst].argmax()}, Core ML {actual[worst].max():.6f} for {actual[worst].argmax()}")
    checks.append(Check("top-1", agreement >= min_agreement,
                        f"{agreement:.2%} of predictions agree (at least {min_agreement:.1%} needed)"))
    keras_accuracy = coreml_accuracy = None
    if labels is not None:
        keras_accuracy = float((expected.argmax(axis=1) == labels).mean())
        coreml_accuracy = float((actual.argmax(axis=1) == labels).mean())
        checks.append(Check("accuracy", True, f"Keras {keras_accuracy:.2%}, Core ML {coreml_accuracy:.2%}"))
    return VerifyResult(str(coreml_path), str(keras_path), len(images), source, precision, atol,
                        min_agreement, max_diff, mean_diff, agreement, keras_accuracy, coreml_accuracy, checks)


def accuracy_change(coreml_path: Path, keras_path: Path, data: Path, unsafe: bool = False) -> dict:
    """What a lower weight precision costs: Keras (fp32) against the Core ML model on labelled data."""
    from kerasml.keras_models import load_keras_model
    from kerasml.runtime import load_model

    coreml = load_model(Path(coreml_path))
    image = coreml.image
    images, labels, source = _images_for(image.height, image.width, image.channels, Path(data), None)
    keras_model = load_keras_model(Path(keras_path), unsafe=unsafe)
    expected = _keras_outputs(keras_model, image, images)
    actual = coreml.predict_probabilities(images)
    keras_accuracy = float((expected.argmax(axis=1) == labels).mean())
    coreml_accuracy = float((actual.argmax(axis=1) == labels).mean())
    return {"samples": len(images), "source": source, "keras_accuracy": keras_accuracy,
            "coreml_accuracy": coreml_accuracy,
            "points_change": round(100 * (coreml_accuracy - keras_accuracy), 4)}


def _keras_outputs(keras_model, image, images: np.ndarray) -> np.ndarray:
    """The Keras model's outputs for raw pixels, given exactly what Core ML's image preprocessing
    computes from them (channel order, scale, per-channel bias)."""
    pixels = images.astype(np.float32)
    if image.colour == "bgr":
        pixels = pixels[..., ::-1]
    keras_input = pixels * np.float32(image.scale) + np.asarray(image.bias, np.float32)
    return keras_model.predict(keras_input.reshape((len(images), *keras_model.input_shape)))


def _images_for(height: int, width: int, channels: int, data: Path | None, samples: int | None):
    """Images to compare on: the user's data, else bundled MNIST digits, else seeded noise."""
    if data is not None:
        from kerasml.data import load_dataset
        dataset = load_dataset(path=Path(data), say=lambda message: None)
        x, y, _ = dataset.labelled_images(limit=samples, size=height)
        if x.shape[1:] != (height, width, channels):
            raise KerasmlError(f"--data images are {x.shape[1]}x{x.shape[2]}x{x.shape[3]} but the model takes "
                               f"{height}x{width}x{channels}")
        return x, y, f"images from {data}"
    samples = samples or 1000
    if (height, width, channels) == (28, 28, 1):
        from kerasml.data.sources import load_mnist_sample
        sample = load_mnist_sample()
        order = np.random.default_rng(0).permutation(len(sample["x_train"]))[:samples]
        return sample["x_train"][order], sample["y_train"][order], "bundled MNIST digits"
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, size=(samples, height, width, channels), dtype=np.uint8), None,
            "random images (pass --data for real ones)")


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
