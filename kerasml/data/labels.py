"""Class labels: presets (defined in kerasml/record.py), label files and comma lists, all checked the same way."""

from __future__ import annotations

from pathlib import Path

from kerasml.errors import KerasmlError
from kerasml.record import LABEL_PRESETS


def parse_labels(spec: str) -> list[str]:
    """`digits`, `fashion`, `@labels.txt` (one label a line) or `a,b,c`."""
    spec = spec.strip()
    if spec in LABEL_PRESETS:
        return list(LABEL_PRESETS[spec])
    if spec.startswith("@"):
        return read_label_file(Path(spec[1:]))
    if "," in spec:
        return check_labels([part.strip() for part in spec.split(",")], f"--labels {spec!r}")
    raise KerasmlError(f"unknown label preset {spec!r}; use one of {', '.join(LABEL_PRESETS)}, "
                       "@file.txt (one label a line) or a comma-separated list like cat,dog")


def read_label_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise KerasmlError(f"label file {path} is a directory; give a text file with one label a line") from None
    except FileNotFoundError:
        raise KerasmlError(f"label file {path} not found") from None
    except UnicodeDecodeError:
        raise KerasmlError(f"label file {path} is not UTF-8 text; give one label a line") from None
    except OSError as exc:
        raise KerasmlError(f"cannot read label file {path}: {exc.strerror}") from None
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:       # a trailing newline or two is normal, not a blank label
        lines.pop()
    return check_labels(lines, f"label file {path}")


def check_labels(labels: list[str], where: str) -> list[str]:
    if not labels:
        raise KerasmlError(f"{where} has no labels")
    for number, label in enumerate(labels, start=1):
        if not label:
            raise KerasmlError(f"{where}: label {number} is blank; every class needs a name")
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise KerasmlError(f"{where}: label {label!r} appears twice; labels must be unique")
        seen.add(label)
    return labels

