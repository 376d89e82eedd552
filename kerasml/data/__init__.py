"""Training data: where images come from, checked once, returned in one shape.

`load_dataset` is the stage's one public function. Whatever the source, the result is a `Dataset`
of uint8 images `(N, H, W, C)` with integer labels; scaling to what the network sees happens in
the model recipe and is written into the training record. Image folders are the exception that
is not held in memory: their `Dataset` has no arrays but `folders`, which streams the files
(see folders.py); `labelled_images` gives a few decoded images of either kind as arrays.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from kerasml.data.folders import ImageFolders
from kerasml.record import DIGITS, FASHION
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
    folders: ImageFolders | None = None   # image folders: files decoded while training, no arrays

    @property
    def image_shape(self) -> tuple[int, int, int]:
        if self.folders is not None:
            return self.folders.image_shape()
        x = self.x_train if self.x_train is not None else self.x_test
        return tuple(x.shape[1:])   # type: ignore[return-value]

    def labelled_images(self, limit: int | None = None, size: int | None = None):
        """(uint8 images, labels, what): the test split, else the training images; for checks
        and reports. Folder images are decoded here, `limit` of them (a seeded sample) at `size`."""
        if self.folders is not None:
            folders = self.folders
            files, what = ((folders.test, "test split") if folders.test is not None
                           else (folders.train, "training images (no test split)"))
            x, y = folders.arrays(files, size=size, limit=limit)
            return x, y, what
        if self.x_test is not None:
            x, y, what = self.x_test, self.y_test, "test split"
        else:
            x, y, what = self.x_train, self.y_train, "training images (no test split)"
        return (x, y, what) if limit is None else (x[:limit], y[:limit], what)

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


__all__ = ["Dataset", "ImageFolders", "load_dataset", "DIGITS", "FASHION", "load_mnist", "load_mnist_sample",
           "load_fashion"]
