"""Shared fixtures (the real MNIST test set when present, tiny models trained once per run) and the
helpers several test modules use (`from conftest import make_shapes, quiet, restore_ctrl_c`)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
MNIST_TEST_DIR = REPO.parent / "shared" / "data" / "mnist-test"


SHAPES = {"circle": (220, 40, 40), "square": (40, 170, 60), "triangle": (40, 70, 220)}


def make_shapes(root: Path, per_class: int = 20, size: int = 32, seed: int = 0, gray: bool = False,
                classes: dict = SHAPES) -> Path:
    """Coloured shapes on pale noisy backgrounds, one folder per shape: PNG and JPEG, some bigger."""
    rng = np.random.default_rng(seed)
    for name, colour in classes.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            side = size * 3 // 2 if i % 3 == 0 else size          # mixed sizes: resized when read
            image = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(190, 256, 3)))
            draw = ImageDraw.Draw(image)
            r = side * rng.uniform(0.22, 0.38)
            cx, cy = side / 2 + rng.uniform(-side / 10, side / 10, 2)
            if name == "circle":
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
            elif name == "square":
                draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
            else:
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
            if gray:
                image = image.convert("L")
            image.save(folder / f"{name}{i:03d}.{'jpg' if i % 2 else 'png'}")
    return root


def make_split_shapes(root: Path, **kwargs) -> Path:
    for split, count, seed in (("train", 16, 0), ("val", 4, 1), ("test", 6, 2)):
        make_shapes(root / split, per_class=count, seed=seed, **kwargs)
    return root


def restore_ctrl_c() -> None:
    """`preexec_fn` for a child that a test stops with SIGINT: pytest-xdist's workers ignore SIGINT,
    and an ignored signal is inherited, so without this Python in the child never sees Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def quiet(message: str) -> None:
    pass


# Fixtures that train or convert a real model: every test that uses one is `slow` (make test-fast
# leaves them out; make test runs everything).
TRAINING_FIXTURES = {"trained_digits", "sample_cnn", "made", "converted", "models", "saved_backbone",
                     "keras_model", "digit_aimodel", "cnn"}


def pytest_collection_modifyitems(items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


# ------------------------------------------------------------------------------------- scanning


@pytest.fixture(scope="session")
def mnist_test_dir() -> Path:
    """../shared/data/mnist-test (the real 10,000 MNIST test digits): evaluate only, never train."""
    if not (MNIST_TEST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST test set not found at {MNIST_TEST_DIR}")
    return MNIST_TEST_DIR


@pytest.fixture(scope="session")
def mnist_test(mnist_test_dir):
    """(images uint8 (10000, 28, 28), labels int64 (10000,))."""
    from kerasml.data.idx import read_idx
    return (read_idx(mnist_test_dir / "t10k-images-idx3-ubyte.gz"),
            read_idx(mnist_test_dir / "t10k-labels-idx1-ubyte.gz").astype(np.int64))


@pytest.fixture(scope="session")
def small_digits_npz(tmp_path_factory) -> Path:
    """600 bundled training digits (60 per class) with 200 more as a test split, as an .npz."""
    from kerasml.data.sources import SAMPLE_PATH
    with np.load(SAMPLE_PATH, allow_pickle=False) as sample:
        x, y = sample["x_train"], sample["y_train"]
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:600], order[600:800]
    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez_compressed(path, x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])
    return path


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory, small_digits_npz):
    """A tutorial-architecture digit model trained for one epoch, with its record and plots."""
    from kerasml.training.train import TrainOptions, train
    out = tmp_path_factory.mktemp("trained") / "digits.keras"
    return train(TrainOptions(data=small_digits_npz, arch="tutorial", epochs=1, out=out, quiet=True),
                 say=lambda message: None)


@pytest.fixture(scope="session")
def sample_cnn(tmp_path_factory) -> Path:
    """A small CNN trained for 4 epochs on the 5,000 bundled digits (about 93-95% on MNIST's test
    set): good enough to notice a worse image preparation. It takes raw 0-255 pixels (its first
    layer rescales), so `kerasml convert` gives Core ML scale 1 with no training record."""
    import keras

    from kerasml.data.sources import SAMPLE_PATH
    with np.load(SAMPLE_PATH, allow_pickle=False) as sample:
        x, y = sample["x_train"], sample["y_train"]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[..., None], y, epochs=4, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("sample_cnn") / "digits.keras"
    model.save(path)
    return path
