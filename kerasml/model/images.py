"""Which images a model is measured on: the one policy every command follows.

Labelled images (evaluate, report, `convert --data` / `--precision auto`, `diff --sensitivity`), the
first that exists of:

1. `--data PATH` (an .npz, IDX folder or class folders);
2. the separate test set the model's training record was scored on (`train --test-data`);
3. the data the record says the model was trained on (its test split; report, which knows the
   record's seed, can take the validation split the model never trained on);
4. the dataset the record names (`mnist`, `fashion`, ...);
5. for a 28x28 grayscale model: MNIST's test set (downloaded and cached when online), offline the
   bundled 5,000-digit sample (said so: a model trained on it scores higher there).

Anything else is one line asking for `--data`. Comparing two models (verify, diff) needs no
labels: `--data`, else the bundled digits for a 28x28 grayscale model (no download, no record
needed: the same images every time), else seeded random images.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from kerasml.errors import KerasmlError
from kerasml.record import TrainingRecord

DIGIT_SHAPE = (28, 28, 1)
OFFLINE_DIGITS = ("the bundled 5,000-digit MNIST sample (offline: could not download the MNIST test set; a model "
                  "trained on this sample scores higher here than on unseen digits; pass --data PATH for a real "
                  "test set)")


@dataclasses.dataclass
class Source:
    """Where labelled images come from: the dataset, what to call it, and whether it is the data the
    model was trained on (so its held-out split can be recomputed from the record)."""

    dataset: object            # kerasml.data.Dataset
    what: str
    trained_on: bool = False


def labelled_source(shape: tuple[int, int, int], data: Path | None = None, record: TrainingRecord | None = None,
                    say: Callable[[str], None] = lambda message: None) -> Source:
    """Steps 1-5 of the policy: the labelled data to measure a model of `shape` images on."""
    from kerasml.data import SOURCES, load_dataset

    if data is not None:
        return Source(load_dataset(path=Path(data), say=say), f"images from {data}",
                      trained_on=_same_path(data, record.extra.get("data") if record else None))
    if record is not None:
        test_data = record.extra.get("test_data")
        if test_data and Path(test_data).exists():
            return Source(load_dataset(path=Path(test_data), say=say), f"{Path(test_data).name} (the record's test set)")
        for trained in (record.extra.get("data"), record.dataset_source):
            if trained and Path(trained).exists():
                return Source(load_dataset(path=Path(trained), say=say), f"{Path(trained).name} (trained on)", True)
        if record.dataset in SOURCES:
            return Source(load_dataset(record.dataset, say=say), f"{record.dataset}", True)
    if tuple(shape) == DIGIT_SHAPE:
        return _digits(say)
    raise KerasmlError("no labelled images for this model (no training record names its data); pass --data PATH "
                       "to labelled images")


def labelled_images(shape: tuple[int, int, int], data: Path | None = None, record: TrainingRecord | None = None,
                    limit: int | None = None, say: Callable[[str], None] = lambda message: None):
    """(uint8 images (N, H, W, C), int64 labels, what they are) by the policy: a dataset's test split,
    else its images (a seeded `limit` of them for folders)."""
    source = labelled_source(shape, data, record, say)
    x, y, split = source.dataset.labelled_images(limit=limit, size=shape[0])
    x = x if x.ndim == 4 else x[..., np.newaxis]
    if x.shape[1:] != tuple(shape):
        raise KerasmlError(f"--data images are {x.shape[1]}x{x.shape[2]}x{x.shape[3]} but the model takes "
                           f"{shape[0]}x{shape[1]}x{shape[2]}")
    what = source.what if split == "test split" or "bundled" in source.what else f"{source.what}, {split}"
    return x, np.asarray(y, dtype=np.int64), what


def comparison_images(shape: tuple[int, int, int], data: Path | None = None, samples: int | None = None):
    """(images, labels or None, what they are) to compare two models on: --data, else the bundled
    digits for a 28x28 grayscale model, else seeded random images; `samples` of them (1,000)."""
    if data is not None:
        x, y, _ = labelled_images(shape, Path(data), limit=samples)
        return x, y, f"images from {data}"
    samples = samples or 1000
    if tuple(shape) == DIGIT_SHAPE:
        from kerasml.data.sources import load_mnist_sample

        sample = load_mnist_sample()
        order = np.random.default_rng(0).permutation(len(sample["x_train"]))[:samples]
        return sample["x_train"][order], sample["y_train"][order], "bundled MNIST digits"
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, size=(samples, *shape), dtype=np.uint8), None,
            "random images (pass --data for real ones)")


def _digits(say) -> Source:
    """MNIST's test set when it can be had, else the bundled sample with what that means."""
    from kerasml.data import Dataset, load_mnist

    fields = load_mnist()
    if fields.get("x_test") is not None:
        return Source(Dataset(**{**fields, "x_train": None, "y_train": None}), "MNIST test set (keras.datasets)")
    fields = {**fields, "x_test": None, "y_test": None, "note": None}
    return Source(Dataset(**fields), OFFLINE_DIGITS, trained_on=True)


def _same_path(a, b) -> bool:
    return b is not None and Path(a).resolve() == Path(b).resolve()
