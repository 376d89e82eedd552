"""Tiny Core ML classifiers for the `kerasml try` tests, written as protobuf specs without
coremltools (whose import pulls in TensorFlow: tens of seconds on a busy 2-core machine)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from kerasml.model import proto

GRAYSCALE, RGB = 10, 20


@functools.cache   # the same weights for every test module of one run
def softmax_regression(steps: int = 100, rate: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(W (10, 784), b (10,)): multinomial logistic regression on the 5,000 bundled digits by plain
    gradient descent (about 2 s): 89.88% on the MNIST test set when measured, and confident enough
    to pass the app's 60% bar on clear drawings."""
    from kerasml.data.sources import SAMPLE_PATH

    with np.load(SAMPLE_PATH, allow_pickle=False) as sample:
        x = sample["x_train"].reshape(len(sample["x_train"]), -1).astype(np.float32) / 255
        onehot = np.eye(10, dtype=np.float32)[sample["y_train"]]
    weights, bias = np.zeros((784, 10), np.float32), np.zeros(10, np.float32)
    for _ in range(steps):
        logits = x @ weights + bias
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        gradient = (p - onehot) / len(x)
        weights -= rate * (x.T @ gradient)
        bias -= rate * gradient.sum(axis=0)
    return weights.T.copy(), bias


def classifier_spec(side: int, colour: int, labels: list, weights: np.ndarray, bias: np.ndarray,
                    metadata: dict | None = None, classifier: bool = True):
    """image (side x side, GRAYSCALE or RGB, pixels / 255) -> flatten -> dense -> softmax."""
    spec = proto.model_pb2().Model()
    spec.specificationVersion = 4
    image = spec.description.input.add()
    image.name = "image"
    image.type.imageType.width = image.type.imageType.height = side
    image.type.imageType.colorSpace = colour
    network = spec.neuralNetworkClassifier if classifier else spec.neuralNetwork
    probabilities = spec.description.output.add()
    probabilities.name = "labelProbabilities"
    if classifier:
        numeric = all(isinstance(label, int) for label in labels)
        key = probabilities.type.dictionaryType
        (key.int64KeyType if numeric else key.stringKeyType).SetInParent()
        label = spec.description.output.add()
        label.name = "classLabel"
        (label.type.int64Type if numeric else label.type.stringType).SetInParent()
        spec.description.predictedFeatureName = "classLabel"
        spec.description.predictedProbabilitiesName = "labelProbabilities"
        (network.int64ClassLabels if numeric else network.stringClassLabels).vector.extend(labels)
        network.labelProbabilityLayerName = "labelProbabilities"
    else:
        probabilities.type.multiArrayType.shape.append(len(labels))
        probabilities.type.multiArrayType.dataType = 65568   # FLOAT32
    scaler = network.preprocessing.add()
    scaler.featureName = "image"
    scaler.scaler.channelScale = 1 / 255
    flatten = network.layers.add()
    flatten.name, flatten.flatten.mode = "flat", 0
    flatten.input.append("image")
    flatten.output.append("flat")
    dense = network.layers.add()
    dense.name = "dense"
    dense.input.append("flat")
    dense.output.append("logits")
    dense.innerProduct.inputChannels = weights.shape[1]
    dense.innerProduct.outputChannels = weights.shape[0]
    dense.innerProduct.hasBias = True
    dense.innerProduct.weights.floatValue.extend(weights.ravel().tolist())
    dense.innerProduct.bias.floatValue.extend(bias.tolist())
    softmax = network.layers.add()
    softmax.name = "softmax"
    softmax.softmax.SetInParent()
    softmax.input.append("logits")
    softmax.output.append("labelProbabilities")
    for key, value in (metadata or {}).items():
        if key.startswith("com."):
            spec.description.metadata.userDefined[key] = value
        else:
            setattr(spec.description.metadata, key, value)
    return spec


def digit_model(folder: Path) -> Path:
    weights, bias = softmax_regression()
    spec = classifier_spec(28, GRAYSCALE, list(range(10)), weights, bias, {
        "shortDescription": "Reads a handwritten digit (test model: softmax regression)",
        "author": "kerasml tests", "license": "MIT", "versionString": "1.0",
        "com.kerasml.test_accuracy": "0.8988", "com.kerasml.dataset": "mnist-sample",
        "com.kerasml.architecture": "softmax regression"})
    return save(spec, folder / "digits.mlmodel")


def rgb_model(folder: Path, side: int = 8) -> Path:
    """Three colour classes: the weights sum each channel, so a red image reads as 'red'."""
    weights = np.zeros((3, 3 * side * side), np.float32)
    for channel in range(3):
        weights[channel, channel * side * side:(channel + 1) * side * side] = 10.0 / (side * side)
    spec = classifier_spec(side, RGB, ["red", "green", "blue"], weights, np.zeros(3, np.float32),
                           {"shortDescription": "Names the main colour of a photo"})
    return save(spec, folder / "colours.mlmodel")


def regressor_model(folder: Path) -> Path:
    """An image model with no class labels: not a classifier."""
    spec = classifier_spec(28, GRAYSCALE, list(range(10)), np.zeros((10, 784), np.float32),
                           np.zeros(10, np.float32), classifier=False)
    return save(spec, folder / "regressor.mlmodel")


def save(spec, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(spec.SerializeToString())
    return path
