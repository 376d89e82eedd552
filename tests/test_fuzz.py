"""Property-based fuzzing of the parsers that read user files: whatever the bytes, the result is
a well-formed array or list, or a `KerasmlError` with one line — never another exception."""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kerasml.data.idx import read_idx, read_idx_bytes
from kerasml.data.labels import parse_labels
from kerasml.data.sources import read_npz
from kerasml.errors import KerasmlError

BUDGET = settings(max_examples=300, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])


def one_line(exc: KerasmlError) -> None:
    assert str(exc) and "\n" not in str(exc)


def idx_header(dtype_code: int, shape: list[int]) -> bytes:
    return struct.pack(">BBBB", 0, 0, dtype_code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


@BUDGET
@given(st.binary(max_size=600))
def test_idx_random_bytes(raw):
    try:
        array = read_idx_bytes(raw)
    except KerasmlError as exc:
        one_line(exc)
    else:
        assert array.size * array.itemsize == len(raw) - 4 - 4 * array.ndim


@BUDGET
@given(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07]),
       st.lists(st.integers(0, 40), min_size=0, max_size=4), st.binary(max_size=2000),
       st.booleans())
def test_idx_plausible_headers(code, shape, body, zipped):
    raw = idx_header(code, shape) + body
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train-images-idx3-ubyte"
        path.write_bytes(gzip.compress(raw) if zipped else raw)
        try:
            array = read_idx(path)
        except KerasmlError as exc:
            one_line(exc)
        else:
            assert list(array.shape) == shape


@BUDGET
@given(st.binary(max_size=400))
def test_npz_random_bytes(raw):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.npz"
        path.write_bytes(b"PK\x03\x04" + raw)
        try:
            fields = read_npz(path)
        except KerasmlError as exc:
            one_line(exc)
        else:   # whatever parses is a complete, consistent dataset
            assert fields["x_train"] is not None or fields["x_test"] is not None
            for split in ("train", "test"):
                if fields[f"x_{split}"] is not None:
                    assert len(fields[f"x_{split}"]) == len(fields[f"y_{split}"])


ARRAYS = st.sampled_from([
    np.zeros((3, 28, 28), np.uint8), np.ones((2, 10, 10, 3), np.float64) * 7, np.array([0, 1, 2]),
    np.array([[0, 1], [1, 0]]), np.full((2, 9, 9), np.nan), np.array(["a", "b"]), np.zeros((0, 28, 28)),
    np.zeros((4, 784), np.uint8), np.array([1.5, 2.0]), np.array(3), np.zeros((2, 28, 28), bool)])


@BUDGET
@given(st.dictionaries(st.sampled_from(["x_train", "y_train", "x_test", "y_test", "other"]), ARRAYS))
def test_npz_arrays_of_every_shape(arrays):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.npz"
        np.savez(path, **arrays)
        try:
            fields = read_npz(path)
        except KerasmlError as exc:
            one_line(exc)
        else:
            for split in ("train", "test"):
                x, y = fields[f"x_{split}"], fields[f"y_{split}"]
                if x is not None:
                    assert x.dtype == np.uint8 and x.ndim == 4 and len(x) == len(y) > 0
                    assert y.dtype == np.int64 and (y >= 0).all()


@BUDGET
@given(st.text(max_size=300))
def test_label_files(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "labels.txt"
        path.write_text(text, encoding="utf-8")
        try:
            labels = parse_labels(f"@{path}")
        except KerasmlError as exc:
            one_line(exc)
        else:
            assert labels and len(set(labels)) == len(labels) and all(labels)
            assert all(label == label.strip() for label in labels)
