"""Training data: where images come from, checked once, returned in one shape.

`load_dataset` is the stage's one public function. Whatever the source, the result is a `Dataset`
of uint8 images `(N, H, W, C)` with integer labels; scaling to what the network sees happens in
the model recipe and is written into the training record.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from kerasml.data.labels import DIGITS, FASHION
from kerasml.data.sources import (SOURCES, load_fashion, load_mnist, load_mnist_sample,
                                  load_path)
from kerasml.errors import KerasmlError


@dataclasses.dataclass
class Dataset:
    name: str
    source: str                      # where the pixels came from, for the training record
    x_train: np.ndarray | None       # uint8 (N, H, W, C)
    y_train: np.ndarray | None       # int64 (N,)
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    labels: list[str] = dataclasses.field(default_factory=lambda: list(DIGITS))
    note: str | None = None          # a line the user should see (e.g. offline fallback)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        x = self.x_train if self.x_train is not None else self.x_test
        return tuple(x.shape[1:])   # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def load_dataset(name: str | None = None, path: Path | None = None,
                 say: Callable[[str], None] = print) -> Dataset:
    """`--dataset NAME` or `--data PATH` to a checked `Dataset`."""
    if path is not None:
        dataset = load_path(Path(path))
    else:
        name = name or "mnist"
        if name not in SOURCES:
            raise KerasmlError(f"unknown dataset {name!r}; choose one of {', '.join(SOURCES)} "
                               "or pass --data PATH")
        dataset = SOURCES[name]()
    result = Dataset(**dataset)
    if result.note:
        say(result.note)
    return result


__all__ = ["Dataset", "load_dataset", "DIGITS", "FASHION", "load_mnist", "load_mnist_sample",
           "load_fashion"]
