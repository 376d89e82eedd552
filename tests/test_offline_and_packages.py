"""Offline behaviour (quiet MNIST fallback for train and evaluate) and .mlpackage manifests that
point outside their package."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kerasml.data import sources
from kerasml.errors import KerasmlError


def _offline(monkeypatch):
    monkeypatch.setattr(sources, "_mnist_cached", lambda: False)
    monkeypatch.setattr(sources, "_reachable", lambda host, timeout=3.0: False)


def test_offline_mnist_falls_back_quietly(monkeypatch, capsys):
    _offline(monkeypatch)
    fields = sources.load_mnist()
    assert fields["name"] == "mnist-sample"
    assert fields["note"].startswith("note: could not download MNIST (no network connection)")
    printed = capsys.readouterr()
    assert "Downloading" not in printed.out + printed.err


class _Downloader:
    """Stands in for keras (imported only if kerasml reaches Keras' downloader): prints the line the
    real `fashion_mnist.load_data()` prints before it fails offline, then fails the same way."""

    def __init__(self, images=None):
        self.datasets = self
        self.fashion_mnist = self
        self.images = images

    def load_data(self):
        if self.images is not None:
            return self.images
        print("Downloading data from https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
              "train-labels-idx1-ubyte.gz")
        raise Exception("URL fetch failure on https://storage.googleapis.com/... -- "
                        "[Errno -3] Temporary failure in name resolution")


def _fashion_not_installed(monkeypatch, tmp_path, keras):
    import sys

    from kerasml import libs

    monkeypatch.setattr(sources, "DEBIAN_FASHION", tmp_path / "not-installed")
    monkeypatch.setattr(libs, "tensorflow", lambda: None)
    monkeypatch.setitem(sys.modules, "keras", keras)


def test_offline_fashion_fails_in_one_line_without_keras_downloading(monkeypatch, tmp_path, capsys):
    """Debian's dataset-fashion-mnist not installed and no network: kerasml's own line, and nothing
    from Keras' downloader before it (it used to print "Downloading data from https://...")."""
    _fashion_not_installed(monkeypatch, tmp_path, _Downloader())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setattr(sources, "_keras_cached", lambda relative: False)
    monkeypatch.setattr(sources, "_reachable", lambda host, timeout=3.0: False)
    with pytest.raises(KerasmlError, match=r"Fashion-MNIST is not installed and could not be downloaded "
                                           r"\(no network connection\); install it with `apt-get install"):
        sources.load_fashion()
    printed = capsys.readouterr()
    assert "Downloading" not in printed.out + printed.err


def test_fashion_in_keras_cache_is_read_offline(monkeypatch, tmp_path):
    images = np.zeros((3, 28, 28), np.uint8)
    labels = np.array([0, 1, 2], np.uint8)
    _fashion_not_installed(monkeypatch, tmp_path, _Downloader(((images, labels), (images, labels))))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for name in sources.FASHION_FILES:
        (tmp_path / "datasets" / "fashion-mnist").mkdir(parents=True, exist_ok=True)
        (tmp_path / "datasets" / "fashion-mnist" / name).write_bytes(b"")
    monkeypatch.setattr(sources, "_reachable", lambda host, timeout=3.0: pytest.fail("probed the network"))
    fields = sources.load_fashion()
    assert fields["name"] == "fashion" and fields["source"] == "keras.datasets.fashion_mnist"


def test_online_fashion_failure_says_why(monkeypatch, tmp_path, capsys):
    """Reachable but the download fails anyway: Keras' own line, then one line that says why."""
    _fashion_not_installed(monkeypatch, tmp_path, _Downloader())
    monkeypatch.setattr(sources, "_keras_cached", lambda relative: False)
    monkeypatch.setattr(sources, "_reachable", lambda host, timeout=3.0: True)
    with pytest.raises(KerasmlError, match=r"could not be downloaded \(\[Errno -3\] Temporary failure"):
        sources.load_fashion()


def test_cached_mnist_is_tried_even_offline(monkeypatch):
    """A cached mnist.npz needs no network: Keras' loader is asked, not the bundled sample."""
    monkeypatch.setattr(sources, "_mnist_cached", lambda: True)
    monkeypatch.setattr(sources, "_reachable", lambda host, timeout=3.0: pytest.fail("probed the network"))
    import keras

    digits = np.zeros((3, 28, 28), np.uint8)
    labels = np.array([0, 1, 2], np.uint8)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: ((digits, labels), (digits, labels)))
    assert sources.load_mnist()["name"] == "mnist"


def test_cache_location_follows_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(sources, "KERAS_FALLBACK_HOME", tmp_path / "no-fallback")
    assert not sources._mnist_cached()
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "mnist.npz").write_bytes(b"")
    assert sources._mnist_cached()


def test_evaluate_without_data_offline_uses_the_sample_and_says_so(monkeypatch, tmp_path):
    from kerasml.model.images import labelled_images

    _offline(monkeypatch)
    x, y, source = labelled_images((28, 28, 1))     # evaluate's images when no --data is given
    assert x.shape == (5000, 28, 28, 1) and y.shape == (5000,)
    assert "offline" in source and "pass --data" in source


def _package_pointing_at(tmp_path, target: str):
    package = tmp_path / "evil.mlpackage"
    (package / "Data" / "com.apple.CoreML").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("not for you\n")
    manifest = {"fileFormatVersion": "1.0.0", "rootModelIdentifier": "m",
                "itemInfoEntries": {"m": {"path": target, "name": "model.mlmodel", "author": "x",
                                          "description": "y"}}}
    (package / "Manifest.json").write_text(json.dumps(manifest))
    return package


def test_runtime_refuses_a_manifest_that_leaves_the_package(tmp_path):
    from kerasml.runtime import load_model

    package = _package_pointing_at(tmp_path, "../../secret.txt")
    with pytest.raises(KerasmlError, match="points outside the package"):
        load_model(package)


def test_inspect_refuses_a_manifest_that_leaves_the_package(tmp_path):
    from kerasml.model.inspect import load_spec

    package = _package_pointing_at(tmp_path, "../../secret.txt")
    with pytest.raises(KerasmlError, match="points outside the package"):
        load_spec(package)


def test_manifest_inside_the_package_is_followed(tmp_path):
    from kerasml.model.coreml_spec import package_model_file

    package = _package_pointing_at(tmp_path, "com.apple.CoreML/model.mlmodel")
    (package / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(b"")
    assert package_model_file(package) == package / "Data" / "com.apple.CoreML" / "model.mlmodel"
