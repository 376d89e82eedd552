"""A NumPy reference runtime for Core ML models, to check on Linux what a converted model computes.

`load_model(path)` reads a .mlmodel file or an .mlpackage folder (or a parsed spec) and returns a
`CoreMLModel` whose `predict_probabilities(images)` and `predict(features)` follow the Core ML
specification: NeuralNetwork layers and ML Program ops each have one small function in a table
(`nn_layers.LAYERS`, `nn_layers_nd.LAYERS_ND`, `mil_ops.OPS`). Importing this package does not import
TensorFlow or coremltools' converters: the protobuf classes are loaded on their own (see `_proto`).
"""

from kerasml.runtime.errors import UnsupportedModelError
from kerasml.runtime.model import CoreMLModel, ImageInput, load_model

__all__ = ["CoreMLModel", "ImageInput", "UnsupportedModelError", "load_model"]
