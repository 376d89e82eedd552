"""Splits of a dataset: the seeded validation share of array data, a separate test set joined to
the training data, and the one-line error for an image that cannot be decoded while a split streams.

Nothing here imports TensorFlow, so `kerasml report` and the tests can split data without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys

import numpy as np

from kerasml.data import Dataset
from kerasml.errors import KerasmlError


def split_validation(dataset: Dataset, val_split: float, seed: int):
    """Array data: (x_train, y_train, x_val, y_val), the validation images a seeded random share."""
    x, y = dataset.x_train, dataset.y_train
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(len(x) * val_split)))
    if len(x) - n_val < 1:
        raise KerasmlError(f"{dataset.source} has only {len(x)} training images; need at least 2")
    val, tr = order[:n_val], order[n_val:]
    return x[tr], y[tr], x[val], y[val]


def with_test_split(dataset: Dataset, test: Dataset) -> Dataset:
    """`dataset` with `test`'s images (its test split, else all of them) as its test split."""
    x, y = (test.x_test, test.y_test) if test.x_test is not None else (test.x_train, test.y_train)
    if x.shape[1:] != dataset.image_shape:
        raise KerasmlError(f"--test-data images are {x.shape[1:]}, training images {dataset.image_shape}; "
                           "they must have the same size and channels")
    if y.max() >= dataset.num_classes:
        raise KerasmlError(f"--test-data has label {y.max()} but the training data has "
                           f"{dataset.num_classes} classes")
    return dataclasses.replace(dataset, x_test=x, y_test=y,
                               source=f"{dataset.source}; test: {test.source}")


@contextlib.contextmanager
def decoding_errors(dataset: Dataset):
    """An image that passed the header check but cannot be decoded (truncated, damaged) stops
    with one line naming the file instead of a TensorFlow traceback."""
    try:
        yield
    except Exception as exc:
        # Only TensorFlow raises its OpError, so it is imported whenever one is raised.
        tensorflow = sys.modules.get("tensorflow")
        if dataset.folders is None or tensorflow is None or not isinstance(exc, tensorflow.errors.OpError):
            raise
        damaged = dataset.folders.find_damaged()
        if damaged is None:
            raise
        raise KerasmlError(f"cannot decode {damaged[0]} ({damaged[1]}); remove or re-save that image") from None
