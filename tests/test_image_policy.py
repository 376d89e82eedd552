"""Which images a model is measured on (kerasml/model/images.py), in the order its docstring gives:
--data, the record's test set, the data it was trained on, the dataset it names, MNIST for a 28x28
grayscale model; comparisons without labels fall back to the bundled digits, then seeded noise."""

from __future__ import annotations

import numpy as np
import pytest

from kerasml.data import sources
from kerasml.errors import KerasmlError
from kerasml.model.images import comparison_images, labelled_images, labelled_source
from kerasml.record import TrainingRecord


def _npz(path, n: int, side: int = 12, channels: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    np.savez(path, x_train=rng.integers(0, 256, (n, side, side, channels), dtype=np.uint8),
             y_train=rng.integers(0, 3, n), x_test=rng.integers(0, 256, (n // 2, side, side, channels), dtype=np.uint8),
             y_test=rng.integers(0, 3, n // 2))
    return path


def _offline(monkeypatch):
    monkeypatch.setattr(sources, "_mnist_cached", lambda: False)
    monkeypatch.setattr(sources, "_reachable", lambda host, timeout=3.0: False)


def test_the_order_of_the_labelled_sources(tmp_path):
    given, tested, trained = _npz(tmp_path / "given.npz", 20), _npz(tmp_path / "t10k.npz", 30), _npz(tmp_path / "train.npz", 40)
    record = TrainingRecord(dataset="custom", dataset_source=str(trained), extra={"test_data": str(tested)})
    shape = (12, 12, 1)
    x, _, what = labelled_images(shape, given, record)
    assert len(x) == 10 and what == f"images from {given}"                   # 1. --data: its test split
    x, _, what = labelled_images(shape, None, record)
    assert len(x) == 15 and "the record's test set" in what                 # 2. the record's test set
    record.extra = {}
    source = labelled_source(shape, None, record)
    assert source.trained_on and "trained on" in source.what                # 3. the data it was trained on
    assert len(labelled_images(shape, None, record)[0]) == 20               #    (its test split)
    with pytest.raises(KerasmlError, match="pass --data PATH"):
        labelled_images(shape, None, TrainingRecord(dataset="custom", dataset_source=str(tmp_path / "gone.npz")))


def test_a_named_dataset_and_digits_offline(monkeypatch):
    _offline(monkeypatch)
    source = labelled_source((28, 28, 1), None, TrainingRecord(dataset="mnist-sample"))
    assert source.what == "mnist-sample" and source.trained_on              # 4. the dataset it names
    x, y, what = labelled_images((28, 28, 1))                               # 5. digits, offline: the sample
    assert x.shape == (5000, 28, 28, 1) and "offline" in what and "pass --data" in what
    with pytest.raises(KerasmlError, match="pass --data PATH"):
        labelled_images((32, 32, 3))


def test_comparison_images_need_no_labels():
    x, y, what = comparison_images((28, 28, 1), samples=50)
    assert x.shape == (50, 28, 28, 1) and y is not None and what == "bundled MNIST digits"
    noise, labels, what = comparison_images((8, 8, 3), samples=5)
    assert noise.shape == (5, 8, 8, 3) and labels is None and "random" in what
    again, _, _ = comparison_images((8, 8, 3), samples=5)
    assert np.array_equal(noise, again)                                      # seeded: the same every time
