"""The network architectures `kerasml train --arch NAME` builds, each with its training defaults.

Every builder takes the image shape and class count and returns an uncompiled Keras model whose
input is the already-scaled image (`pixel * scale + bias`, see the training record): the scaling
lives in Core ML's image preprocessing, not in the graph, so Xcode feeds raw pixels.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

from kerasml.training.backbones import BACKBONES, FINE_TUNE_RATE, Backbone, recipe_text
from kerasml.errors import KerasmlError


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random changes to training images, applied per image in the input pipeline only, so none
    of it ends up in the converted model."""

    rotation: float = 10.0     # degrees, either way
    shift: float = 2.0 / 28    # fraction of the image side, either way
    zoom: float = 0.1          # fraction, either way
    elastic: float = 0.0       # pixels: the largest elastic displacement (0: none; see kerasml/training/augment.py)
    elastic_sigma: float = 4.0  # pixels: how smooth the elastic displacement field is
    mirror: bool = False       # flip half the images left to right (garments, not digits)
    clean: float = 0.0         # share of images passed through unchanged (test images are undistorted)


@dataclasses.dataclass(frozen=True)
class Architecture:
    name: str
    summary: str
    build: Callable[[tuple[int, int, int], int], object]
    epochs: int                # training defaults, overridable from the command line
    batch_size: int
    learning_rate: float
    augment: Augmentation | None = None
    label_smoothing: float = 0.0
    schedule: str = "constant"  # "constant" (Keras' Adam as in the tutorials) or "cosine" (AdamW)
    warmup: bool = False        # cosine only: one epoch of linear warm-up first
    backbone: Backbone | None = None   # transfer learning: a keras.applications network (backbones.py)

    def recipe(self) -> str:
        """The training recipe in one line, for --list-archs."""
        if self.backbone is not None:
            head, tune = split_epochs(self.epochs)
            return recipe_text(self.backbone, head, tune, self.learning_rate) + f", batch {self.batch_size}"
        return f"{self.epochs} epochs, batch {self.batch_size}"


@dataclasses.dataclass(frozen=True)
class Phase:
    """One stretch of training with a fixed set of trainable layers: every architecture has one;
    a pretrained backbone has two (the head alone, then its top blocks too)."""

    name: str
    epochs: int
    learning_rate: float
    unfreeze: Backbone | None = None   # open this backbone's top blocks before the phase


def split_epochs(epochs: int) -> tuple[int, int]:
    """A transfer recipe's epochs: the first half (rounded up) head only, the rest fine-tuning."""
    head = math.ceil(epochs / 2)
    return head, epochs - head


def plan_phases(arch: Architecture, epochs: int, learning_rate: float, pretrained: bool) -> list[Phase]:
    """The phases `epochs` are spent in. Random backbone weights are trained whole in one phase:
    freezing random features would teach the head nothing useful."""
    if arch.backbone is None or not pretrained:
        return [Phase("train", epochs, learning_rate)]
    head, tune = split_epochs(epochs)
    phases = [Phase("head", head, learning_rate)]
    if tune:
        phases.append(Phase("fine-tune", tune, learning_rate * FINE_TUNE_RATE, unfreeze=arch.backbone))
    return phases


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
        layers.Dense(num_classes, activation="softmax", dtype="float32"),  # float32 under mixed precision
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
        layers.Dense(num_classes, activation="softmax", dtype="float32"),  # float32 under mixed precision
    ], name="chollet")


# Batch normalisation's running statistics must settle within a few hundred steps on small data;
# Keras' default momentum (0.99) leaves them near their initial values and the model at chance.
BN_MOMENTUM = 0.9


def _conv_bn_relu(x, filters: int, padding: str = "same"):
    from keras import layers

    # No bias: batch normalisation's beta does that job.
    x = layers.Conv2D(filters, 3, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    return layers.ReLU()(x)


def _small_bn_net(input_shape, num_classes, filters: tuple[int, int], padding: str, dropout: float, name: str,
                  dense: int = 128):
    """Conv-ReLU → pool → Conv → pool → BN-ReLU → Dense-BN-ReLU → dropout → softmax.

    The first convolution runs at full resolution, where batch normalisation costs a third of the
    training time for no accuracy (measured). The second is normalised after its pooling, on a
    quarter of the values: TensorFlow's CPU batch normalisation keeps one core busy, and on the
    unpooled maps it made a two-core fit take twice as long. Max pooling commutes with an increasing
    scale-shift-ReLU, so while the scale stays positive this is the usual block with its batch
    statistics taken over the pooled maps. The later layers keep batch normalisation so a high
    learning rate with cosine decay converges in a few epochs.
    """
    from keras import layers, models

    inputs = layers.Input(shape=input_shape, name="image")
    x = layers.Conv2D(filters[0], 3, padding=padding, activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    # No bias: batch normalisation's beta does that job.
    x = layers.Conv2D(filters[1], 3, padding=padding, use_bias=False)(x)
    x = layers.MaxPooling2D()(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    x = layers.ReLU()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(dropout)(x)
    # float32 output: under mixed precision a float16 softmax loses small probabilities.
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return models.Model(inputs, outputs, name=name)


def kerasml_digits(input_shape: tuple[int, int, int], num_classes: int):
    """kerasml's default for digits (196,298 parameters on MNIST): three convolutions, the later
    two batch-normalised, trained on affine + elastically distorted digits.

    A two-convolution net underfits elastically distorted digits (its training accuracy stays near
    97%), so the third convolution (128 filters at 3x3, on a 5x5 map) gives the capacity; the middle
    one, at 11x11 where most of the work per image is, stays as narrow as the first (32), so the 18
    epochs take less than the tutorial recipe's time (measured in `make bench`). No dropout: the
    distortions regularise enough (the Dropout layer stays, at rate 0, for --dropout and kerasml tune)."""
    return _three_conv_net(input_shape, num_classes, (32, 32, 128), "kerasml", dropout=0.0)


def kerasml_fashion(input_shape: tuple[int, int, int], num_classes: int):
    """kerasml's default for Fashion-MNIST: two convolutions, 'same' padding keeps the garments' edges.
    24 filters in the first and 384 units in the dense layer (not 16 and 128): better on validation
    over three seeds. The second convolution is batch-normalised after pooling, at no cost on
    validation, which cut the two-core fit's time by about a third; 7 epochs rather than 8 cost
    0.08 points of validation accuracy over three seeds and an eighth of the time (docs/training.md)."""
    return _small_bn_net(input_shape, num_classes, (24, 32), "same", 0.3, "kerasml_fashion", dense=384)


def kerasml_elastic(input_shape: tuple[int, int, int], num_classes: int):
    """The digit default with a middle convolution twice as wide (64 filters), dropout .3, rate 3e-3
    and every image distorted: 242,506 parameters, nearly twice the work per image for no better
    accuracy on validation (measured over three seeds)."""
    return _three_conv_net(input_shape, num_classes, (32, 64, 128), "kerasml_elastic", dropout=0.3)


def _three_conv_net(input_shape, num_classes, filters: tuple[int, int, int], name: str, dropout: float):
    """Conv-ReLU → pool → Conv-BN-ReLU → pool → Conv-BN-ReLU → Dense-BN-ReLU → dropout → softmax,
    'valid' padding throughout (28 → 26 → 13 → 11 → 5 → 3)."""
    from keras import layers, models

    inputs = layers.Input(shape=input_shape, name="image")
    x = layers.Conv2D(filters[0], 3, activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = _conv_bn_relu(x, filters[1], "valid")
    x = layers.MaxPooling2D()(x)
    x = _conv_bn_relu(x, filters[2], "valid")
    x = layers.Flatten()(x)
    x = layers.Dense(128, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(dropout)(x)
    # float32 output: under mixed precision a float16 softmax loses small probabilities.
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return models.Model(inputs, outputs, name=name)


def vgg(input_shape: tuple[int, int, int], num_classes: int):
    """A batch-normalised VGG-style network for photos of any size: two convolutions per
    resolution, and global average pooling so the head stays small at 224x224."""
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
    # float32 output: under mixed precision a float16 softmax loses small probabilities.
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return models.Model(inputs, outputs, name="vgg")


ARCHITECTURES = {arch.name: arch for arch in [
    Architecture("kerasml", "small batch-normalised CNN with three convolutions, affine + elastic augmentation, "
                 "AdamW + cosine (default for digits)",
                 kerasml_digits, epochs=18, batch_size=128, learning_rate=5e-3,
                 augment=Augmentation(elastic=2.0, clean=0.2),
                 schedule="cosine"),
    Architecture("kerasml-fashion", "two-convolution variant without augmentation (default for --dataset fashion)",
                 kerasml_fashion, epochs=7, batch_size=128, learning_rate=3e-3, label_smoothing=0.1,
                 schedule="cosine"),
    Architecture("kerasml-elastic", "the digit default with a wider middle convolution (64 filters) and dropout .3",
                 kerasml_elastic, epochs=18, batch_size=128, learning_rate=3e-3,
                 augment=Augmentation(elastic=2.0), schedule="cosine"),
    Architecture("vgg", "batch-normalised VGG-style CNN with global pooling (default for image folders)",
                 vgg, epochs=20, batch_size=32, learning_rate=1e-3, augment=Augmentation(rotation=15, shift=0.1),
                 label_smoothing=0.1, schedule="cosine", warmup=True),
    Architecture("tutorial", "model_m from the Keras & Core ML tutorial (94,602 parameters)",
                 tutorial, epochs=15, batch_size=32, learning_rate=1e-3),
    Architecture("chollet", "model_c from the keras-io simple MNIST convnet example",
                 chollet, epochs=15, batch_size=128, learning_rate=1e-3),
]}
# Photos of the user's own: a pretrained backbone, fine-tuned (see backbones.py). The builder is
# only called with random weights (kerasml tune); train passes --weights to build_transfer_model.
for _backbone in BACKBONES.values():
    ARCHITECTURES[_backbone.name] = Architecture(
        _backbone.name, f"keras.applications {_backbone.application} backbone, new head, two-phase fine-tuning",
        lambda shape, classes, backbone=_backbone: _transfer(backbone, shape, classes),
        epochs=10, batch_size=32, learning_rate=1e-3, augment=Augmentation(rotation=10, shift=0.1),
        label_smoothing=0.1, backbone=_backbone)


def _transfer(backbone: Backbone, shape, classes: int):
    from kerasml.training.backbones import build_transfer_model
    return build_transfer_model(backbone, shape, classes, weights="none")
DEFAULT_ARCHITECTURE = "kerasml"


def default_architecture(dataset_name: str, streamed: bool) -> str:
    """Measured defaults (see `make bench`): one recipe for digits, one for Fashion-MNIST, and a
    network with global pooling for photo folders, whose images may be far larger than 28x28."""
    if streamed:
        return "vgg"
    return "kerasml-fashion" if dataset_name == "fashion" else DEFAULT_ARCHITECTURE


def get_architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise KerasmlError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)} "
                           "(kerasml train --list-archs)")
    return ARCHITECTURES[name]
