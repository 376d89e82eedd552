"""The model zoo's cases, defined once: `make zoo` (bench/zoo.py) runs them all, pytest
(tests/test_zoo.py) runs the `fast` ones.

Every case is a Keras image classifier built with seeded random weights and nothing downloaded:
one unusual layer in a tiny network ("layer" cases), or a keras.applications family at the
smallest input it accepts ("model" cases). A case's builder returns a Keras model; the zoo saves,
converts, verifies and times it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

CLASSES = 10


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    kind: str                      # "layer" (one unusual layer) or "model" (keras.applications)
    build: Callable                # () -> keras.Model, weights seeded
    fast: bool = False             # part of `make test`'s subset


def _keras():
    from kerasml.libs import tensorflow

    tensorflow()
    import keras

    return keras


def _classifier(input_shape, *body, flatten=True):
    """Input → body layers → (flatten) → Dense softmax: a tiny classifier around one idea."""
    keras = _keras()
    keras.utils.set_random_seed(7)
    layers = [keras.layers.Input(input_shape), *body]
    if flatten:
        layers.append(keras.layers.Flatten())
    layers.append(keras.layers.Dense(CLASSES, activation="softmax"))
    return keras.Sequential(layers)


def _layer_case(name, input_shape, *body_factories, fast=True, flatten=True):
    """A case whose body layers are made when the case is built (so keras loads lazily)."""
    def build():
        keras = _keras()
        keras.utils.set_random_seed(7)
        return _classifier(input_shape, *(make(keras) for make in body_factories), flatten=flatten)
    return Case(name, "layer", build, fast=fast)


def _rows(keras):
    """An (H, W, 1) image read as H steps of W features."""
    return keras.layers.Reshape((12, 12))


@functools.cache
def _custom_layers():
    """Two computations Keras has only as functions, wrapped as small layers (registered, so a saved
    model loads again in this process without running stored code)."""
    keras = _keras()
    import tensorflow as tf

    @keras.saving.register_keras_serializable(package="kerasml_zoo")
    class GeluTanh(keras.layers.Layer):
        def call(self, x):
            return keras.activations.gelu(x, approximate=True)

    @keras.saving.register_keras_serializable(package="kerasml_zoo")
    class ResizeAlignCorners(keras.layers.Layer):
        def __init__(self, size, **kwargs):
            super().__init__(**kwargs)
            self.size = tuple(size)

        def call(self, x):
            return tf.compat.v1.image.resize_bilinear(x, self.size, align_corners=True)

        def compute_output_shape(self, shape):
            return (shape[0], *self.size, shape[3])

        def get_config(self):
            return {**super().get_config(), "size": self.size}

    return GeluTanh, ResizeAlignCorners


def _gelu_tanh(keras):
    return _custom_layers()[0]()


def _resize_align_corners(keras):
    return _custom_layers()[1]((18, 18))


def _broadcasting_merges():
    keras = _keras()
    keras.utils.set_random_seed(7)
    image = keras.layers.Input((12, 12, 3))
    features = keras.layers.Conv2D(4, 3, padding="same")(image)
    channel = keras.layers.GlobalAveragePooling2D(keepdims=True)(features)          # (1, 1, 4)
    scaled = keras.layers.Multiply()([features, channel])                             # broadcasts
    shifted = keras.layers.Add()([scaled, keras.layers.Dense(4)(channel)])
    joined = keras.layers.Concatenate()([shifted, image])
    flat = keras.layers.Flatten()(joined)
    return keras.Model(image, keras.layers.Dense(CLASSES, activation="softmax")(flat))


def _transformer_block():
    """ViT-style: patch convolution, then LayerNorm → MultiHeadAttention → residual → LayerNorm →
    gelu MLP → residual, global pooling, softmax head."""
    keras = _keras()
    keras.utils.set_random_seed(7)
    image = keras.layers.Input((16, 16, 1))
    patches = keras.layers.Conv2D(16, 4, strides=4)(image)                           # 4x4 patches
    tokens = keras.layers.Reshape((16, 16))(patches)
    normed = keras.layers.LayerNormalization(epsilon=1e-6)(tokens)
    attended = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(normed, normed)
    tokens = keras.layers.Add()([tokens, attended])
    normed = keras.layers.LayerNormalization(epsilon=1e-6)(tokens)
    hidden = keras.layers.Dense(32, activation="gelu")(normed)
    tokens = keras.layers.Add()([tokens, keras.layers.Dense(16)(hidden)])
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.LayerNormalization()(tokens))
    return keras.Model(image, keras.layers.Dense(CLASSES, activation="softmax")(pooled))


def _attention_only():
    keras = _keras()
    keras.utils.set_random_seed(7)
    image = keras.layers.Input((12, 12, 1))
    rows = keras.layers.Reshape((12, 12))(image)
    attended = keras.layers.MultiHeadAttention(num_heads=3, key_dim=4)(rows, rows)
    flat = keras.layers.Flatten()(attended)
    return keras.Model(image, keras.layers.Dense(CLASSES, activation="softmax")(flat))


def _application(name, size, channels=3, **kwargs):
    def build():
        keras = _keras()
        keras.utils.set_random_seed(7)
        return getattr(keras.applications, name)(weights=None, input_shape=(size, size, channels),
                                                 classes=CLASSES, **kwargs)
    return build


LAYER_CASES = [
    _layer_case("gelu", (12, 12, 1), lambda k: k.layers.Conv2D(4, 3), lambda k: k.layers.Activation("gelu")),
    _layer_case("gelu-tanh", (12, 12, 1), lambda k: k.layers.Conv2D(4, 3), _gelu_tanh),
    _layer_case("dense-gelu", (12, 12, 1), lambda k: k.layers.Flatten(),
                lambda k: k.layers.Dense(16, activation="gelu")),
    _layer_case("conv-groups", (12, 12, 3), lambda k: k.layers.Conv2D(4, 1),
                lambda k: k.layers.Conv2D(6, 3, groups=2, activation="relu")),
    _layer_case("conv-depthwise-groups", (12, 12, 3), lambda k: k.layers.Conv2D(3, 3, groups=3)),
    _layer_case("depthwise", (12, 12, 3), lambda k: k.layers.DepthwiseConv2D(3, depth_multiplier=2)),
    _layer_case("separable", (12, 12, 3), lambda k: k.layers.SeparableConv2D(4, 3, padding="same")),
    _layer_case("conv-dilated", (12, 12, 1), lambda k: k.layers.Conv2D(4, 3, dilation_rate=2, padding="same")),
    _layer_case("conv-dilated-uneven", (12, 12, 1),
                lambda k: k.layers.Conv2D(4, 3, dilation_rate=(1, 2), padding="same")),
    _layer_case("conv-transpose", (8, 8, 1), lambda k: k.layers.Conv2DTranspose(4, 3, strides=2, padding="same")),
    _layer_case("conv-transpose-valid", (8, 8, 1), lambda k: k.layers.Conv2DTranspose(3, 3, strides=2)),
    _layer_case("upsample-nearest", (8, 8, 1), lambda k: k.layers.UpSampling2D(2)),
    _layer_case("upsample-bilinear", (8, 8, 1), lambda k: k.layers.UpSampling2D((2, 3), interpolation="bilinear")),
    _layer_case("resize-nearest-fractional", (12, 12, 1), lambda k: k.layers.Resizing(18, 18, "nearest")),
    _layer_case("resize-nearest-shrink", (12, 12, 1), lambda k: k.layers.Resizing(8, 5, "nearest")),
    _layer_case("resize-bilinear-fractional", (12, 12, 1), lambda k: k.layers.Resizing(18, 15, "bilinear")),
    _layer_case("resize-area-shrink", (12, 12, 1), lambda k: k.layers.Resizing(4, 6, "area")),
    _layer_case("resize-area-enlarge", (6, 6, 1), lambda k: k.layers.Resizing(12, 18, "area")),
    _layer_case("resize-bilinear-align-corners", (12, 12, 1), _resize_align_corners),
    _layer_case("layer-norm", (12, 12, 1), lambda k: k.layers.Reshape((12, 12)),
                lambda k: k.layers.LayerNormalization()),
    _layer_case("lstm", (12, 12, 1), _rows, lambda k: k.layers.LSTM(8), flatten=False),
    _layer_case("lstm-sequences", (12, 12, 1), _rows, lambda k: k.layers.LSTM(6, return_sequences=True)),
    _layer_case("gru", (12, 12, 1), _rows, lambda k: k.layers.GRU(8), flatten=False),
    _layer_case("simple-rnn", (12, 12, 1), _rows, lambda k: k.layers.SimpleRNN(8), flatten=False),
    _layer_case("bidirectional-gru", (12, 12, 1), _rows,
                lambda k: k.layers.Bidirectional(k.layers.GRU(6)), flatten=False),
    _layer_case("bidirectional-lstm", (12, 12, 1), _rows,
                lambda k: k.layers.Bidirectional(k.layers.LSTM(6, return_sequences=True))),
    _layer_case("conv1d", (12, 12, 1), _rows, lambda k: k.layers.Conv1D(6, 3, activation="relu")),
    _layer_case("cropping", (12, 12, 1), lambda k: k.layers.Cropping2D(((1, 2), (2, 1)))),
    _layer_case("zero-padding", (12, 12, 1), lambda k: k.layers.ZeroPadding2D(((1, 2), (0, 3))),
                lambda k: k.layers.Conv2D(2, 3)),
    _layer_case("softmax-axis", (12, 12, 3), lambda k: k.layers.Conv2D(4, 3),
                lambda k: k.layers.Softmax(axis=1)),
    _layer_case("softmax-channels", (12, 12, 3), lambda k: k.layers.Conv2D(4, 3), lambda k: k.layers.Softmax()),
    Case("merge-broadcasting", "layer", _broadcasting_merges, fast=True),
    Case("multi-head-attention", "layer", _attention_only, fast=True),
    Case("transformer-block", "layer", _transformer_block, fast=True),
]

# The smallest variant of every keras.applications family, at the smallest input it accepts.
MODEL_CASES = [
    Case("MobileNet", "model", _application("MobileNet", 32, alpha=0.25)),
    Case("MobileNetV2", "model", _application("MobileNetV2", 32, alpha=0.35), fast=True),
    Case("MobileNetV3Small", "model", _application("MobileNetV3Small", 32, minimalistic=False)),
    Case("MobileNetV3Large", "model", _application("MobileNetV3Large", 32)),
    Case("ResNet50", "model", _application("ResNet50", 32)),
    Case("ResNet50V2", "model", _application("ResNet50V2", 32)),
    Case("DenseNet121", "model", _application("DenseNet121", 32)),
    Case("Xception", "model", _application("Xception", 71)),
    Case("NASNetMobile", "model", _application("NASNetMobile", 32)),
    Case("VGG16", "model", _application("VGG16", 32)),
    Case("InceptionV3", "model", _application("InceptionV3", 75)),
    Case("InceptionResNetV2", "model", _application("InceptionResNetV2", 75)),
    Case("EfficientNetB0", "model", _application("EfficientNetB0", 32)),
    Case("EfficientNetV2B0", "model", _application("EfficientNetV2B0", 32)),
    Case("ConvNeXtTiny", "model", _application("ConvNeXtTiny", 32)),
]

CASES = LAYER_CASES + MODEL_CASES


def case_named(name: str) -> Case:
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(f"no zoo case {name!r}; cases: {', '.join(c.name for c in CASES)}")
