"""Real-data parity: a tutorial-architecture model trained for one epoch, converted to .mlmodel and
.mlpackage (fp32), must give Keras' probabilities on all 10,000 MNIST test digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kerasml.runtime import load_model

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).resolve().parents[1] / "kerasml" / "data" / "mnist_sample.npz"


def tutorial_model():
    import keras

    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            L.Conv2D(32, 5, activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.2),
            L.Conv2D(64, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.2),
            L.Conv2D(128, 1, activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.2),
            L.Flatten(),
            L.Dense(128, activation="relu"),
            L.Dense(10, activation="softmax"),
        ]
    )


def to_core_ml(model, fmt: str):
    """The project's own converter, at full precision."""
    from kerasml.conversion.to_coreml import convert_keras_model

    return convert_keras_model(model, fmt=fmt, precision="fp32")


@pytest.fixture(scope="module")
def trained():
    import keras

    keras.utils.set_random_seed(0)
    with np.load(SAMPLE) as sample:
        x, y = sample["x_train"], sample["y_train"]
    model = tutorial_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit((x / 255.0).astype(np.float32)[..., None], y, epochs=1, batch_size=64, verbose=0)
    return model


@pytest.mark.parametrize("fmt", ["mlmodel", "mlpackage"])
def test_mnist_parity_with_keras(trained, mnist_test, fmt, tmp_path):
    images, labels = mnist_test
    path = tmp_path / f"digits.{fmt}"
    to_core_ml(trained, fmt).save(str(path))
    model = load_model(path)
    assert model.weight_precision == "float32" and model.image.height == 28 and len(model.labels) == 10
    expected = trained.predict((images / 255.0).astype(np.float32)[..., None], batch_size=1000, verbose=0)
    got = model.predict_probabilities(images)
    assert got.shape == (10_000, 10)
    assert np.abs(got - expected).max() <= 1e-5
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert (got.argmax(axis=1) == labels).mean() > 0.8  # trained: the comparison is not between two noises
