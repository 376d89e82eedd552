"""The baseline recipes kerasml must beat, exactly as their tutorials train them.

Each returns the trained Keras model, its fit time in seconds, its test accuracy and the fit's CPU
time in seconds (what this process computed, which other processes on a shared machine move far
less than the wall clock). They use plain Keras on arrays, like the tutorials, not kerasml's pipeline.
"""

from __future__ import annotations

import time

import numpy as np


def _scaled(x: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) or (N, 28, 28, 1) to float32 (N, 28, 28, 1) in 0-1, as the tutorials do."""
    x = x.astype(np.float32) / 255
    return x[..., np.newaxis] if x.ndim == 3 else x


def _one_hot(y: np.ndarray, classes: int = 10) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[y]


def tutorial_recipe(x_train, y_train, x_test, y_test, seed: int = 42):
    """"Beginning Machine Learning with Keras & Core ML": model_m, Adam, 15 epochs, batch 32, x/255."""
    import keras

    from kerasml.training.architectures import tutorial

    keras.utils.set_random_seed(seed)
    model = tutorial((28, 28, 1), 10)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    x_train = _scaled(x_train)
    started, cpu_started = time.perf_counter(), time.process_time()
    # All 5,000 digits, as the tutorial trains (Keras' validation_split would take the last 10%,
    # which in the class-sorted sample is every 9).
    model.fit(x_train, _one_hot(y_train), batch_size=32, epochs=15, verbose=0)
    fit_s, fit_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    _, accuracy = model.evaluate(_scaled(x_test), _one_hot(y_test), verbose=0)
    return model, fit_s, float(accuracy), fit_cpu_s


def fashion_recipe(x_train, y_train, x_test, y_test, seed: int = 42):
    """The classic Fashion-MNIST Keras recipe: one conv block, 10 epochs, batch 128, x/255."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    x_train = _scaled(x_train)
    started, cpu_started = time.perf_counter(), time.process_time()
    model.fit(x_train, _one_hot(y_train), batch_size=128, epochs=10, verbose=0)
    fit_s, fit_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    _, accuracy = model.evaluate(_scaled(x_test), _one_hot(y_test), verbose=0)
    return model, fit_s, float(accuracy), fit_cpu_s
