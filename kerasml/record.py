"""What a model is, as data: the training record that travels with every model.

`kerasml train` writes `<name>.training.json` beside the model; `convert` reads it for the image
size, colour, pixel scale and labels, and copies the provenance into the Core ML metadata under
`METADATA_PREFIX`; `verify`, `evaluate` and `package` read it back from there. The label presets
and the one definition of pixel scaling (`Preprocessing.scale_pixels`) live here too, so nothing
here is typed twice.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from kerasml.errors import KerasmlError
from kerasml.files import write_text_atomic

RECORD_SUFFIX = ".training.json"
METADATA_PREFIX = "com.kerasml."       # the Core ML user-defined metadata keys convert writes

# Label presets: `--labels digits|fashion`, the bundled datasets' labels, a record's `label_preset`.
DIGITS = [str(d) for d in range(10)]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
LABEL_PRESETS = {"digits": DIGITS, "fashion": FASHION}


def preset_name(labels: list[str]) -> str | None:
    """The preset `labels` are ("digits", "fashion"), or None for custom labels."""
    for name, preset in LABEL_PRESETS.items():
        if labels == preset:
            return name
    return None


def metadata_key(name: str) -> str:
    """`test_accuracy` -> `com.kerasml.test_accuracy`."""
    return METADATA_PREFIX + name


# The pixel scale a model is assumed to use when nothing says otherwise: 0-255 pixels to 0-1.
DEFAULT_SCALE = 1 / 255.0


@dataclasses.dataclass
class Preprocessing:
    """How raw 0-255 pixels become the numbers the network sees: `pixel * scale + bias`."""

    height: int = 28
    width: int = 28
    channels: int = 1                       # 1 = grayscale, 3 = RGB
    scale: float = DEFAULT_SCALE
    bias: list[float] = dataclasses.field(default_factory=lambda: [0.0])
    ink: str = "white-on-black"             # MNIST convention: bright strokes on a dark ground
    # The order of the colour channels the network takes: "rgb", or "bgr" for caffe-style
    # backbones (ResNet50's ImageNet weights); `bias` is listed in that order.
    channel_order: str = "rgb"

    @property
    def colour(self) -> str:
        return "grayscale" if self.channels == 1 else self.channel_order

    def describe(self) -> str:
        bias = self.bias[0] if len(set(self.bias)) == 1 else self.bias
        return (f"{self.width}x{self.height} {self.colour}, {self.ink}, "
                f"pixels 0-255 scaled by {self.scale:.6g} plus bias {bias}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the images the model takes."""
        return self.height, self.width, self.channels

    def scale_pixels(self, pixels):
        """Raw 0-255 pixels (..., H, W, C) in RGB order → what the network takes, as Core ML's
        image preprocessing computes it: channels reordered, then `pixel * scale + bias`.

        The one place this is written: verify and report call it on NumPy arrays, the training
        pipeline on float32 TensorFlow tensors (which it leaves to TensorFlow)."""
        import numpy as np

        x = pixels
        if not type(pixels).__module__.startswith("tensorflow"):
            x = np.asarray(pixels, dtype=np.float32)
        if self.channels == 3 and self.channel_order == "bgr":
            x = x[..., ::-1]
        return x * np.float32(self.scale) + np.asarray(self.bias, dtype=np.float32)


@dataclasses.dataclass
class TrainingRecord:
    """Everything `kerasml train` knows about a model it produced."""

    preprocessing: Preprocessing = dataclasses.field(default_factory=Preprocessing)
    labels: list[str] = dataclasses.field(default_factory=list)
    label_preset: str | None = None         # "digits", "fashion", or None for custom labels
    dataset: str = ""
    dataset_source: str = ""
    samples: dict[str, int] = dataclasses.field(default_factory=dict)
    architecture: str = ""
    parameters: int = 0
    epochs_requested: int = 0
    epochs_run: int = 0
    batch_size: int = 0
    seed: int | None = None
    validation: dict[str, float] = dataclasses.field(default_factory=dict)
    test: dict[str, float] = dataclasses.field(default_factory=dict)
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    wall_time_s: float = 0.0
    fit_time_s: float = 0.0
    status: str = "complete"                # "complete" or "interrupted"
    created: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def test_accuracy(self) -> float | None:
        return self.test.get("accuracy")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingRecord":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["preprocessing"] = Preprocessing(**{
            k: v for k, v in dict(data.get("preprocessing") or {}).items()
            if k in {f.name for f in dataclasses.fields(Preprocessing)}})
        return cls(**values)


def model_stem(model_path: Path) -> str:
    """`models/digits.keras` -> `digits`: the name every file beside a model starts with
    (also for SavedModel directories, which have no suffix)."""
    name = Path(model_path).name
    for suffix in (".keras", ".h5", ".hdf5", ".mlmodel", ".mlpackage", ".aimodel"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def record_path(model_path: Path) -> Path:
    """`models/digits.keras` -> `models/digits.training.json`."""
    return Path(model_path).with_name(model_stem(model_path) + RECORD_SUFFIX)


def write_record(model_path: Path, record: TrainingRecord) -> Path:
    path = record_path(model_path)
    write_text_atomic(path, record.to_json())
    return path


def read_record(model_path: Path) -> TrainingRecord | None:
    """The record beside `model_path`, or None when the model was not trained by kerasml."""
    path = record_path(model_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return TrainingRecord.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise KerasmlError(f"{path} is not a valid training record ({exc}); "
                           "fix or delete it, or pass --scale/--bias and --labels") from None


def library_versions() -> dict[str, str]:
    """Versions of everything that shaped a model, for its provenance."""
    import platform
    from importlib import metadata

    from kerasml.version import __version__

    versions = {"kerasml": __version__, "python": platform.python_version()}
    for package in ("tensorflow", "keras", "tf_keras", "coremltools", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions
