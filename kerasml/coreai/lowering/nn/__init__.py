"""NeuralNetwork layers lowered to Core AI: importing this package registers every layer family's
lowerings; `lower_network` walks a network (kerasml/coreai/lowering/nn/engine.py)."""

from kerasml.coreai.lowering.nn import (  # noqa: F401  (imported to register their lowerings)
    activations,
    conv_pool,
    elementwise,
    linear,
    normalization,
    recurrent,
    reductions,
    resize,
    shape_ops,
)
from kerasml.coreai.lowering.nn.engine import lower_network

__all__ = ["lower_network"]
