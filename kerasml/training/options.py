"""What `kerasml train` is asked to do, checked before anything slow happens."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kerasml.errors import KerasmlError
from kerasml.record import DEFAULT_SCALE


@dataclasses.dataclass
class TrainOptions:
    dataset: str | None = None
    data: Path | None = None
    test_data: Path | None = None      # a separate test set (e.g. MNIST's t10k files); never trained on
    arch: str | None = None            # None: the measured default for the data (see architectures)
    epochs: int | None = None          # None: the architecture's default
    batch_size: int | None = None
    learning_rate: float | None = None
    val_split: float = 0.1
    seed: int = 42
    patience: int = 5
    out: Path = Path("models/digits.keras")
    force: bool = False
    quiet: bool = False
    image_size: int | None = None      # image folders: square side in pixels (None: from the data)
    normalize: str = "unit"            # "unit": pixel/255, "symmetric": pixel/127.5 - 1
    width: float = 1.0                 # multiplies every hidden layer's filters and units
    dropout: float | None = None       # every Dropout layer's rate (None: the architecture's)
    extra: dict | None = None          # more provenance for the record (kerasml tune's summary)
    weights: str | None = None         # backbones: imagenet (default), none or a weights file
    distribute: str = "auto"           # auto, none, mirrored or multiworker (see distribute.py)
    mixed_precision: bool = False      # mixed_float16 (GPU only)


NORMALIZATIONS = {"unit": (DEFAULT_SCALE, 0.0), "symmetric": (2 * DEFAULT_SCALE, -1.0)}  # (scale, bias)
MAX_IMAGE_SIZE = 1024


def check_options(options: TrainOptions) -> None:
    """The options that do not need the data, checked before anything slow happens."""
    if not 0.0 < options.val_split < 0.5:
        raise KerasmlError(f"--val-split {options.val_split} must be between 0 and 0.5")
    if options.normalize not in NORMALIZATIONS:
        raise KerasmlError(f"unknown --normalize {options.normalize!r}; use unit (x/255) or "
                           "symmetric (x/127.5 - 1)")
    if options.image_size is not None and not 8 <= options.image_size <= MAX_IMAGE_SIZE:
        raise KerasmlError(f"--image-size {options.image_size} must be between 8 and {MAX_IMAGE_SIZE}")
    if not 0.0 < options.width <= 8.0:
        raise KerasmlError(f"--width {options.width} must be above 0 and at most 8")
    if options.dropout is not None and not 0.0 <= options.dropout < 1.0:
        raise KerasmlError(f"--dropout {options.dropout} must be at least 0 and below 1")
