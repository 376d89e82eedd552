"""The NeuralNetwork side of the runtime: the engine and its layers.

Importing this package imports every layer module once, which registers its layers in
`registry.NN_LAYERS`; the engine looks layers up there and imports none of them itself.
"""

from kerasml.runtime.nn import (  # noqa: F401  (imported to register their layers)
    activations,
    data_movement,
    elementwise,
    normalization,
    rank5_layers,
    rank_n_layers,
    recurrent,
    reductions,
    resize,
    scatter_gather,
    sequence_ops,
    volume_layers,
)
from kerasml.runtime.nn.engine import NeuralNetworkEngine

__all__ = ["NeuralNetworkEngine"]
