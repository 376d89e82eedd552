"""A NumPy reference runtime for Core ML models, to check on Linux what a converted model computes.

`load_model(path)` reads a .mlmodel file or an .mlpackage folder (or a parsed spec) and returns a
`CoreMLModel` whose `predict_probabilities(images)` and `predict(features)` follow the Core ML
specification; `intermediates(images)` gives every value it computes, and `load_model(path,
compute="fp16")` computes as the GPU and Neural Engine do. The tree reads as the two formats:

    model.py      load a spec, decode its inputs and outputs, pick an engine
    nn/           NeuralNetwork: engine.py, weights.py, one module per layer family
    mil/          ML Program: engine.py, values.py (constants, weight blobs), args.py, one module per op family
    registry.py   NN_LAYERS and MIL_OPS: every layer and op registers itself there with a decorator;
                  an ML Program op declares its inputs, one version per iOS release that changed it
    kernels/      the math both formats share, one module per family (the rule below)
    parallel.py   batches over all cores
    fp16.py       compute="fp16": rounding values to float16, and what that does to them
    numerics.py   only a re-export of kernels.same_pads for the Core AI lowering

Kernel rule: kernels/ holds the math NeuralNetwork layers and ML Program ops share, one module per
family; a layout-keeping fast path lives in the module of the plain kernel it speeds up.

Importing this package does not import TensorFlow or coremltools' converters: the protobuf classes
are loaded on their own (see `proto`).
"""

from kerasml.runtime.errors import UnsupportedModelError
from kerasml.runtime.model import CoreMLModel, ImageInput, load_model

__all__ = ["CoreMLModel", "ImageInput", "UnsupportedModelError", "load_model"]
