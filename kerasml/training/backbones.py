"""Transfer learning: a keras.applications backbone, its weights and a new classification head.

`--arch mobilenetv2|mobilenetv3small|efficientnetb0|resnet50` trains in two phases, as the
keras-io transfer-learning guide does: first the new head alone with the backbone frozen, then
the backbone's top blocks unfrozen at a tenth of the rate. The backbone is always called with
`training=False`, and its BatchNormalization layers stay frozen, so their ImageNet statistics are
not overwritten by a few small batches.

Each backbone expects its own pixel scaling. That scaling is written into the training record
(scale, per-channel bias, channel order), so `kerasml convert` builds it into the Core ML image
input; backbones that carry their own Rescaling/Normalization layers take raw 0-255 pixels.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path
from typing import Callable

from kerasml.errors import KerasmlError

# caffe-style ImageNet means, in the BGR order ResNet50's original weights were trained with.
CAFFE_BGR_MEANS = (-103.939, -116.779, -123.68)
HEAD_DROPOUT = 0.2
BN_MOMENTUM = 0.9          # as kerasml's own networks (architectures.BN_MOMENTUM), for random weights
FINE_TUNE_RATE = 0.1      # the second phase's learning rate, as a fraction of the head's


@dataclasses.dataclass(frozen=True)
class Backbone:
    name: str                  # --arch
    application: str           # the keras.applications function
    scale: float               # what the backbone expects: pixel * scale + bias, per channel
    bias: tuple[float, float, float]
    channel_order: str         # "rgb", or "bgr" for caffe-style weights
    unfreeze_from: str         # the first layer of the top blocks opened in the second phase
    pixels: str                # how the backbone wants its pixels, for --list-archs and the record
    takes_alpha: bool = False  # --width is the MobileNets' width multiplier (alpha)
    default_size: int = 224    # the size its ImageNet weights were trained at
    min_size: int = 32         # keras.applications refuses smaller inputs


BACKBONES = {backbone.name: backbone for backbone in [
    Backbone("mobilenetv2", "MobileNetV2", 1 / 127.5, (-1.0, -1.0, -1.0), "rgb", "block_13_expand",
             "RGB scaled to [-1, 1]", takes_alpha=True),
    Backbone("mobilenetv3small", "MobileNetV3Small", 1.0, (0.0, 0.0, 0.0), "rgb", "expanded_conv_8_expand",
             "raw 0-255 RGB (its own Rescaling layer maps to [-1, 1])", takes_alpha=True),
    Backbone("efficientnetb0", "EfficientNetB0", 1.0, (0.0, 0.0, 0.0), "rgb", "block6a_expand_conv",
             "raw 0-255 RGB (its own Rescaling and Normalization layers)"),
    Backbone("resnet50", "ResNet50", 1.0, CAFFE_BGR_MEANS, "bgr", "conv5_block1_1_conv",
             "BGR minus the ImageNet means (caffe style)"),
]}


def recipe_text(backbone: Backbone, head_epochs: int, tune_epochs: int, learning_rate: float) -> str:
    """The two-phase recipe in one line, for --list-archs and the record."""
    return (f"{head_epochs} epochs head only (backbone frozen, Adam {learning_rate:g}), then "
            f"{tune_epochs} with the top blocks from {backbone.unfreeze_from} unfrozen at "
            f"{learning_rate * FINE_TUNE_RATE:g}; BatchNorm frozen in inference mode; input {backbone.pixels}")


def build_transfer_model(backbone: Backbone, image_shape: tuple[int, int, int], num_classes: int,
                         weights: str = "none", width: float = 1.0, dropout: float | None = None):
    """backbone (frozen, inference mode) → global average pooling → dropout → softmax."""
    import keras

    height, width_px, channels = image_shape
    if channels != 3:
        raise KerasmlError(f"--arch {backbone.name} takes colour images; the data is grayscale "
                           "(use --arch vgg, or give it RGB images)")
    if min(height, width_px) < backbone.min_size:
        raise KerasmlError(f"--arch {backbone.name} needs images of at least {backbone.min_size}x"
                           f"{backbone.min_size}; pass --image-size {backbone.min_size} or more")
    base = load_backbone(backbone, image_shape, weights, width)
    inputs = keras.Input(shape=image_shape, name="image")
    if weights == "none":   # random weights: the whole network learns, batch statistics included
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                # keras.applications use momentum 0.99-0.999, made for ImageNet's millions of steps:
                # on a few hundred images the running statistics stay near their initial values and
                # validation sits at chance (measured: MobileNetV2 on 540 images, 7 epochs, 16.7%).
                layer.momentum = BN_MOMENTUM
        x = base(inputs)
    else:
        # Frozen for the head phase; training=False keeps BatchNormalization in inference mode
        # in both phases, so fine-tuning does not overwrite the pretrained statistics.
        base.trainable = False
        x = base(inputs, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(HEAD_DROPOUT if dropout is None else dropout, name="head_dropout")(x)
    # float32 output: under mixed precision a float16 softmax loses small probabilities.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"{backbone.name}_transfer")


def load_backbone(backbone: Backbone, image_shape: tuple[int, int, int], weights: str, width: float = 1.0):
    """The keras.applications network without its top, with `weights`: none, imagenet (Keras'
    download and cache, ~/.keras/models) or a local weights file."""
    import keras

    kwargs = dict(include_top=False, input_shape=tuple(image_shape))
    if backbone.takes_alpha:
        kwargs["alpha"] = width
    elif width != 1.0:
        raise KerasmlError(f"--width applies to the MobileNets (their alpha); {backbone.name} has a fixed width")
    make = getattr(keras.applications, backbone.application)
    if weights == "none":
        return make(weights=None, **kwargs)
    if weights == "imagenet":
        return _imagenet(backbone, make, kwargs)
    path = Path(weights)
    if not path.is_file():
        raise KerasmlError(f"--weights {weights}: no such file; use imagenet, none or a weights file "
                           f"saved from a {backbone.name} backbone")
    model = make(weights=None, **kwargs)
    try:
        with warnings.catch_warnings():
            # Keras only warns when it skips layers the file has no weights for; that is a mismatch too.
            warnings.simplefilter("error", UserWarning)
            model.load_weights(str(path))
    except Exception as exc:  # Keras raises ValueError, KeyError, OSError... for foreign files
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise KerasmlError(f"--weights {path} does not fit the {backbone.name} backbone at this size and "
                           f"width ({reason}); pass weights saved from the same backbone without its top "
                           "(backbone.save_weights(...) or Keras' *_no_top.h5/*_notop.h5 file)") from None
    return model


def _imagenet(backbone: Backbone, make: Callable, kwargs: dict):
    """Keras looks in its cache first and downloads only what is missing; offline that fails, and
    kerasml stops rather than train from random weights as if they were pretrained."""
    try:
        return make(weights="imagenet", **kwargs)
    except ValueError as exc:  # e.g. an alpha without published weights
        raise KerasmlError(f"no ImageNet weights for {backbone.name} with these settings: "
                           f"{' '.join(str(exc).split())[:200]}") from None
    except Exception as exc:  # Keras' get_file raises a bare Exception on a failed download
        message = " ".join(str(exc).split())
        match = re.search(r"https?://\S+?/([^/\s:]+\.h5)", message)
        cached = f"put {match.group(1)} into ~/.keras/models, " if match else ""
        raise KerasmlError(f"cannot download the ImageNet weights for {backbone.name} (offline?); "
                           f"{cached}pass --weights FILE with a local weights file, or --weights none "
                           "to train from random weights") from None


def unfreeze_top(model, backbone: Backbone) -> int:
    """Open the backbone's layers from `unfreeze_from` on, BatchNormalization excepted; returns how
    many layers now train."""
    import keras

    base = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    base.trainable = True
    names = [layer.name for layer in base.layers]
    if backbone.unfreeze_from not in names:
        raise KerasmlError(f"the {backbone.name} backbone has no layer {backbone.unfreeze_from}; "
                           "is this Keras version's network different?")
    start = names.index(backbone.unfreeze_from)
    opened = 0
    for index, layer in enumerate(base.layers):
        layer.trainable = index >= start and not isinstance(layer, keras.layers.BatchNormalization)
        opened += int(layer.trainable and bool(layer.weights))
    return opened


def first_conv_kernel(model):
    """The backbone's first convolution kernel (tests: were the weights really loaded?)."""
    import keras

    layers = model.layers
    base = next((layer for layer in layers if isinstance(layer, keras.Model)), None)
    for layer in (base.layers if base is not None else layers):
        if isinstance(layer, keras.layers.Conv2D):
            return layer.get_weights()[0]
    raise KerasmlError("the model has no convolution")


def resolve_weights(backbone: Backbone | None, weights: str | None) -> str:
    """--weights as the recipe uses it: imagenet by default for a backbone; none for the others."""
    if backbone is None:
        if weights not in (None, "none"):
            raise KerasmlError(f"--weights applies to the pretrained backbones (--arch {', '.join(BACKBONES)}); "
                               "the other architectures train from scratch")
        return "none"
    weights = weights or "imagenet"
    if weights not in ("imagenet", "none") and not Path(weights).is_file():
        raise KerasmlError(f"--weights {weights}: no such file; use imagenet, none or a weights file "
                           f"saved from a {backbone.name} backbone")
    return weights


def default_image_size(arch_name: str | None, data_size: int) -> int:
    """--image-size by default: what a backbone's weights were trained at, else the data's size."""
    backbone = BACKBONES.get(arch_name or "")
    return backbone.default_size if backbone is not None else data_size


def input_preprocessing(backbone: Backbone, preprocessing):
    """The record's Preprocessing with the backbone's own pixel scaling and channel order."""
    return dataclasses.replace(preprocessing, scale=backbone.scale, bias=list(backbone.bias),
                               channel_order=backbone.channel_order)


def transfer_record(backbone: Backbone, weights: str, phases) -> dict:
    """What the training record says about the backbone, its weights and the phases run."""
    if weights in ("imagenet", "none"):
        source = {"imagenet": "ImageNet (Keras' cache, ~/.keras/models)",
                  "none": "none: random initialisation, trained whole"}[weights]
    else:
        source = str(Path(weights).resolve())
    return {"backbone": backbone.application, "weights": source, "input": backbone.pixels,
            "phases": [{"name": phase.name, "epochs": phase.epochs, "learning_rate": phase.learning_rate,
                        "unfrozen_from": phase.unfreeze.unfreeze_from if phase.unfreeze else None}
                       for phase in phases]}
