"""`kerasml diff MODEL.keras --sensitivity`: the Keras model converted to an uncompressed ML Program
in memory, then each of its weight tensors compressed alone (sensitivity.py), as a table."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from kerasml.model.precision import BY_NAME
from kerasml.conversion.sensitivity import OpCost, sensitivity


@dataclasses.dataclass
class SensitivityReport:
    """`kerasml diff MODEL.keras --sensitivity`: each weight tensor compressed alone."""

    keras: str
    precision: str
    samples: int
    images: str
    reference_size: int
    reference_accuracy: float
    costs: list[OpCost]

    def lines(self) -> list[str]:
        lines = [f"{self.precision} one layer at a time, {self.keras} as an ML Program "
                 f"({self.reference_size / 1024:.1f} KiB, {self.reference_accuracy:.2%} on {self.samples:,} {self.images})",
                 f"  {'layer':<32} {'op':<14} {'weights':>9} {'saves':>10} {'accuracy':>9} {'points':>7}"]
        for c in sorted(self.costs, key=lambda c: -c.drop_points):
            lines.append(f"  {c.layer[:32]:<32} {c.op[:14]:<14} {c.weights:>9,} {c.saving_bytes / 1024:8.1f} KiB "
                         f"{c.accuracy:9.2%} {-c.drop_points:+7.2f}")
        total = sum(c.saving_bytes for c in self.costs)
        lines.append(f"compressing every layer alone saves {total / 1024:.1f} KiB in all; `kerasml convert --precision "
                     f"auto --max-drop X` keeps {self.precision} on the layers that cost least")
        return lines

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def layer_costs(keras_path: Path, precision: str, data: Path | None, samples: int | None,
                say: Callable[[str], None] = print, unsafe: bool = False) -> SensitivityReport:
    """Convert the Keras model to an uncompressed ML Program in memory and compress each of its
    weight tensors alone with `precision`, measured on labelled images."""
    from kerasml.model import layer_record
    from kerasml.model import precision as schemes
    from kerasml.model.images import labelled_images
    from kerasml.conversion.to_coreml import ConvertOptions, keras_to_core_ml
    from kerasml.errors import KerasmlError
    from kerasml.record import read_record

    if precision not in BY_NAME or BY_NAME[precision].program_config is None or BY_NAME[precision].activations:
        names = ", ".join(n for n, s in BY_NAME.items() if s.program_config is not None and not s.activations)
        raise KerasmlError(f"--sensitivity measures a weight compression scheme; --precision is one of {names}")
    conversion = keras_to_core_ml(ConvertOptions(model=Path(keras_path), format="mlpackage", unsafe=unsafe),
                                  "mlpackage", say=lambda m: None, warn=say)
    images, labels, source = labelled_images(conversion.preprocessing.shape, data, read_record(Path(keras_path)))
    if samples:
        images, labels = images[:samples], labels[:samples]
    record = layer_record.read(dict(conversion.mlmodel.user_defined_metadata)) or {}
    say(f"compressing each layer's weights alone with {schemes.label(precision)} ...")
    costs, size, accuracy = sensitivity(conversion.mlmodel, record, precision, images, labels, say)
    return SensitivityReport(str(keras_path), precision, len(images), source, size, accuracy, costs)
