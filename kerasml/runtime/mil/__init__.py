"""The ML Program side of the runtime: the engine, its value decoding and its ops.

Importing this package imports every op module once, which registers its ops in
`registry.MIL_OPS`; the engine looks ops up there and imports none of them itself.
"""

from kerasml.runtime.mil import (  # noqa: F401  (imported to register their ops)
    activations,
    constexpr,
    conv_pool,
    elementwise,
    linear,
    normalization,
    quantization,
    recurrent,
    reductions,
    resize,
    scatter_gather,
    shape_ops,
    tensor_ops,
)
from kerasml.runtime.mil.engine import ProgramEngine

__all__ = ["ProgramEngine"]
