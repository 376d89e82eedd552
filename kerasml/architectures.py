"""The network architectures `kerasml train --arch NAME` builds, each with its training defaults.

Every builder takes the image shape and class count and returns an uncompiled Keras model whose
input is the already-scaled image (`pixel * scale + bias`, see the training record): the scaling
lives in Core ML's image preprocessing, not in the graph, so Xcode feeds raw pixels.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from kerasml.errors import KerasmlError


@dataclasses.dataclass(frozen=True)
class Architecture:
    name: str
    summary: str
    build: Callable[[tuple[int, int, int], int], object]
    epochs: int                # training defaults, overridable from the command line
    batch_size: int
    learning_rate: float
    augment: bool              # random shifts/rotations/zoom in training only
    label_smoothing: float = 0.0
    schedule: str = "constant"  # "constant" (Keras' Adam as in the tutorials) or "cosine" (AdamW)


def tutorial(input_shape: tuple[int, int, int], num_classes: int):
    """model_m from "Beginning Machine Learning with Keras & Core ML", exactly (94,602 parameters)."""
    from keras import layers, models

    return models.Sequential([
        layers.Input(shape=input_shape, name="image"),
        layers.Conv2D(32, (5, 5), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Dropout(0.5),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Dropout(0.2),
        layers.Conv2D(128, (1, 1), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Dropout(0.2),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(num_classes, activation="softmax"),
    ], name="tutorial")


def chollet(input_shape: tuple[int, int, int], num_classes: int):
    """model_c, the keras-io "Simple MNIST convnet" example (34,826 parameters on MNIST)."""
    from keras import layers, models

    return models.Sequential([
        layers.Input(shape=input_shape, name="image"),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ], name="chollet")


def _conv_bn_relu(x, filters: int, kernel: int = 3):
    from keras import layers

    # No bias: batch normalisation's beta does that job.
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def kerasml_default(input_shape: tuple[int, int, int], num_classes: int):
    """kerasml's default: a small VGG-style network with batch normalisation.

    Two conv blocks per resolution let the network see strokes and their joins before pooling;
    batch normalisation makes a higher learning rate safe, so few epochs suffice; global average
    pooling keeps the head small so 5,000 digits do not overfit it.
    """
    from keras import layers, models

    inputs = layers.Input(shape=input_shape, name="image")
    x = _conv_bn_relu(inputs, 32)
    x = _conv_bn_relu(x, 32)
    x = layers.MaxPooling2D()(x)
    x = _conv_bn_relu(x, 64)
    x = _conv_bn_relu(x, 64)
    x = layers.MaxPooling2D()(x)
    x = _conv_bn_relu(x, 128)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return models.Model(inputs, outputs, name="kerasml")


ARCHITECTURES = {arch.name: arch for arch in [
    Architecture("kerasml", "batch-normalised VGG-style CNN, augmentation, AdamW + cosine (default)",
                 kerasml_default, epochs=12, batch_size=64, learning_rate=3e-3, augment=True,
                 label_smoothing=0.1, schedule="cosine"),
    Architecture("tutorial", "model_m from the Keras & Core ML tutorial (94,602 parameters)",
                 tutorial, epochs=15, batch_size=32, learning_rate=1e-3, augment=False),
    Architecture("chollet", "model_c from the keras-io simple MNIST convnet example",
                 chollet, epochs=15, batch_size=128, learning_rate=1e-3, augment=False),
]}
DEFAULT_ARCHITECTURE = "kerasml"


def get_architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise KerasmlError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)} "
                           "(kerasml train --list-archs)")
    return ARCHITECTURES[name]
