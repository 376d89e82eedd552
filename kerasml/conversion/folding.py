"""A graph pass kerasml adds to coremltools' conversion: a constant per-column scale after a matrix
product folded into its weights.

Keras' `Dense(use_bias=False)` followed by `BatchNormalization` (the head of kerasml's own networks,
and of many others) reaches Core ML as `matmul`, then `mul` by a constant vector, then `add` of one:
coremltools folds batch normalisation into convolutions but not into matrix products. Folded
(`W[:, j] * s[j]`), the `mul` and its vector are gone, and coremltools' own
`fuse_matmul_weight_bias` then makes the `add` the bias of one `linear` op: two ops fewer to run on
the device and in kerasml's runtime, and 4 bytes per column fewer to ship.
"""

from __future__ import annotations

import functools

import numpy as np

PASS = "kerasml::fold_scale_into_matmul"


def conversion_pipeline(ct):
    """coremltools' default pass pipeline with the fold inserted before its matmul + bias fusion."""
    register(ct)
    pipeline = ct.PassPipeline.DEFAULT
    pipeline.insert_pass(pipeline.passes.index("common::fuse_matmul_weight_bias"), PASS)
    return pipeline


@functools.cache
def register(ct) -> None:
    """Register the pass with coremltools (once per process)."""
    from coremltools.converters.mil.mil import Builder as mb
    from coremltools.converters.mil.mil.passes.graph_pass import AbstractGraphPass
    from coremltools.converters.mil.mil.passes.helper import block_context_manager
    from coremltools.converters.mil.mil.passes.pass_registry import register_pass

    @register_pass(namespace="kerasml")
    class fold_scale_into_matmul(AbstractGraphPass):  # noqa: N801  (coremltools names passes in snake case)
        def apply(self, prog):
            for function in prog.functions.values():
                self._fold_block(function)

        @block_context_manager
        def _fold_block(self, block):
            for op in list(block.operations):
                for nested in op.blocks:
                    self._fold_block(nested)
                if op.enclosing_block is not None:   # not removed by an earlier fold
                    _fold(op, block, mb)


def _fold(matmul, block, mb) -> bool:
    """matmul(x, W) → mul(·, s), with W and s constant and s one value per output column, becomes
    matmul(x, W * s). False (graph unchanged) when the pattern does not hold exactly."""
    if matmul.op_type != "matmul" or matmul.y.val is None or matmul.y.rank != 2 or matmul.x.val is not None:
        return False
    output = matmul.outputs[0]
    if len(output.child_ops) != 1 or output in block.outputs:
        return False
    scale_op = output.child_ops[0]
    if scale_op.op_type != "mul":
        return False
    scale = scale_op.y if scale_op.x is output else scale_op.x
    if scale.val is None or scale_op.outputs[0].rank != output.rank:
        return False
    weight = np.asarray(matmul.y.val)
    transpose_y = bool(matmul.transpose_y.val)
    columns = weight.shape[0] if transpose_y else weight.shape[1]
    values = np.asarray(scale.val)
    if values.size == 1:
        values = np.full(columns, values.reshape(()), dtype=values.dtype)
    elif values.shape[-1] != columns or values.size != columns:   # one value per output column only
        return False
    values = values.reshape(-1).astype(weight.dtype)
    folded = weight * (values[:, None] if transpose_y else values[None, :])
    product = mb.matmul(x=matmul.x, y=folded, transpose_x=matmul.transpose_x, transpose_y=matmul.transpose_y,
                        before_op=matmul, name=matmul.name)
    if not scale_op.enclosing_block.try_replace_uses_of_var_after_op(
            anchor_op=scale_op, old_var=scale_op.outputs[0], new_var=product):
        return False
    block.remove_ops([scale_op, matmul])
    return True
