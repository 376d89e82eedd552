"""ML Program ops lowered to Core AI: importing this package registers every op family's lowerings."""

from kerasml.coreai.lowering.mil import (  # noqa: F401  (imported to register their lowerings)
    activations,
    compression,
    conv_pool,
    elementwise,
    linear,
    normalization,
    recurrent,
    reductions,
    resize,
    shape_ops,
)
from kerasml.coreai.lowering.mil.program import lower_program, program_inputs

__all__ = ["lower_program", "program_inputs"]
