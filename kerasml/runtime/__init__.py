"""A NumPy reference runtime for Core ML models, to check on Linux what a converted model computes.

`load_model(path)` reads a .mlmodel file or an .mlpackage folder (or a parsed spec) and returns a
`CoreMLModel` whose `predict_probabilities(images)` and `predict(features)` follow the Core ML
specification. The tree reads as the two formats:

    model.py      load a spec, decode its inputs and outputs, pick an engine
    nn/           NeuralNetwork: engine.py, weights.py, one module per layer family
    mil/          ML Program: engine.py, values.py (constants, weight blobs), args.py, one module per op family
    registry.py   NN_LAYERS and MIL_OPS: every layer and op registers itself there with a decorator
    kernels/      the math both formats share, one module per family (see its docstring for the rule)
    parallel.py   batches over all cores
    numerics.py   only a re-export of kernels.same_pads for the Core AI lowering

Importing this package does not import TensorFlow or coremltools' converters: the protobuf classes
are loaded on their own (see `proto`).
"""

from kerasml.runtime.errors import UnsupportedModelError
from kerasml.runtime.model import CoreMLModel, ImageInput, load_model

__all__ = ["CoreMLModel", "ImageInput", "UnsupportedModelError", "load_model"]
