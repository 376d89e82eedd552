"""The NeuralNetwork side of the runtime: the engine and its layers, one module per layer family
(convolution, pooling, linear, normalization incl. batchnorm, activations incl. softmax, elementwise,
shape and data_movement, reductions, recurrent, resize, scatter_gather, sequence_ops).

Importing this package imports every layer module once, which registers its layers in
`registry.NN_LAYERS`; the engine looks layers up there and imports none of them itself.
"""

from kerasml.runtime.nn import (  # noqa: F401  (imported to register their layers)
    activations,
    convolution,
    data_movement,
    elementwise,
    linear,
    normalization,
    pooling,
    recurrent,
    reductions,
    resize,
    scatter_gather,
    sequence_ops,
    shape,
)
from kerasml.runtime.nn.engine import NeuralNetworkEngine

__all__ = ["NeuralNetworkEngine"]
