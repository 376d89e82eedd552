import gzip
import struct

import numpy as np
import pytest

from kerasml.data import load_dataset
from kerasml.data.idx import read_idx, read_idx_bytes
from kerasml.data.labels import parse_labels
from kerasml.record import DIGITS, FASHION
from kerasml.errors import KerasmlError


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_idx_round_trip_plain_and_gzipped(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    (tmp_path / "plain").write_bytes(idx_bytes(images))
    (tmp_path / "zipped").write_bytes(gzip.compress(idx_bytes(images)))
    assert np.array_equal(read_idx(tmp_path / "plain"), images)
    assert np.array_equal(read_idx(tmp_path / "zipped"), images)


@pytest.mark.parametrize("raw, message", [
    (b"", "too short"),
    (b"\x00\x00\x08\x03" + b"\x00" * 4, "truncated"),
    (b"\x12\x34\x08\x01\x00\x00\x00\x01\x00", "magic"),
    (idx_bytes(np.zeros((2, 3, 3)))[:-1], "truncated"),
    (idx_bytes(np.zeros((2, 3, 3))) + b"\x00", "longer than its header"),
])
def test_idx_rejects_damaged_data(raw, message):
    with pytest.raises(KerasmlError, match=message):
        read_idx_bytes(raw)


def test_real_mnist_test_set_reads(mnist_test):
    images, labels = mnist_test
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_bundled_sample_is_balanced_mnist():
    dataset = load_dataset("mnist-sample", say=lambda m: None)
    assert dataset.x_train.shape == (5000, 28, 28, 1) and dataset.x_train.dtype == np.uint8
    assert np.bincount(dataset.y_train).tolist() == [500] * 10
    assert dataset.x_test is None and dataset.labels == DIGITS


def test_bundled_sample_does_not_overlap_the_test_set(mnist_test):
    sample = load_dataset("mnist-sample", say=lambda m: None).x_train[..., 0]
    test_hashes = {image.tobytes() for image in mnist_test[0]}
    assert not any(image.tobytes() in test_hashes for image in sample)


def test_mnist_offline_falls_back_to_sample_with_a_note(monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure on https://example/mnist.npz: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    notes = []
    dataset = load_dataset("mnist", say=notes.append)
    assert dataset.name == "mnist-sample" and len(dataset.x_train) == 5000
    assert len(notes) == 1 and "bundled 5,000-digit sample" in notes[0] and "--data" in notes[0]


def test_fashion_from_debian_package_when_installed():
    from kerasml.data.sources import DEBIAN_FASHION
    if not DEBIAN_FASHION.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    dataset = load_dataset("fashion", say=lambda m: None)
    assert dataset.x_train.shape == (60000, 28, 28, 1) and dataset.x_test.shape == (10000, 28, 28, 1)
    assert dataset.labels == FASHION


def test_npz_with_test_split(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((4, 28, 28), np.uint8), y_train=np.array([0, 1, 2, 3]),
             x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.array([1, 2]))
    dataset = load_dataset(path=path, say=lambda m: None)
    assert dataset.x_train.shape == (4, 28, 28, 1) and dataset.y_test.tolist() == [1, 2]


def test_idx_folder_with_only_test_files(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((3, 28, 28))))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.array([0, 5, 9]))))
    dataset = load_dataset(path=tmp_path, say=lambda m: None)
    assert dataset.x_train is None and dataset.y_test.tolist() == [0, 5, 9]


@pytest.mark.parametrize("arrays, message", [
    (dict(x_train=np.zeros((4, 28, 28), np.uint8)), "needs both"),
    (dict(x_train=np.zeros((4, 28, 28), np.uint8), y_train=np.array([0, 1, 2])), "3 labels for 4 images"),
    (dict(x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.array([0, -1])), "negative"),
    (dict(x_train=np.full((2, 28, 28), np.nan), y_train=np.array([0, 1])), "NaN"),
    (dict(x_train=np.zeros((2, 5, 5), np.uint8), y_train=np.array([0, 1])), "at least 8x8"),
    (dict(x_train=np.zeros((0, 28, 28), np.uint8), y_train=np.array([], np.int64)), "empty"),
    (dict(x_train=np.full((2, 28, 28), 300), y_train=np.array([0, 1])), "0-255"),
    (dict(x_train=np.zeros((2, 28, 28, 2), np.uint8), y_train=np.array([0, 1])), "shape"),
    (dict(x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.array([0.5, 1])), "non-integer"),
])
def test_npz_rejects_bad_arrays(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(KerasmlError, match=message):
        load_dataset(path=path, say=lambda m: None)


def test_npz_needing_pickles_is_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, x_train=np.array([{"a": 1}], dtype=object), y_train=np.array([0]))
    with pytest.raises(KerasmlError, match="pickles"):
        load_dataset(path=path, say=lambda m: None)


def test_label_presets_files_and_lists(tmp_path):
    assert parse_labels("digits") == DIGITS
    assert parse_labels("fashion") == FASHION
    assert parse_labels("cat, dog") == ["cat", "dog"]
    (tmp_path / "labels.txt").write_text("apple\nbanana\n\n")
    assert parse_labels(f"@{tmp_path / 'labels.txt'}") == ["apple", "banana"]


@pytest.mark.parametrize("text, message", [("a\n\nb\n", "blank"), ("a\nb\na\n", "twice"), ("", "no labels")])
def test_bad_label_files(tmp_path, text, message):
    (tmp_path / "labels.txt").write_text(text)
    with pytest.raises(KerasmlError, match=message):
        parse_labels(f"@{tmp_path / 'labels.txt'}")


def test_unknown_preset():
    with pytest.raises(KerasmlError, match="unknown label preset"):
        parse_labels("animals")
