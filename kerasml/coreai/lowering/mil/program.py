"""An ML Program's `main` function, op by op, as Core AI ops.

Constants stay NumPy values; an op whose inputs are all constants is computed once here by
kerasml's own runtime (the same definition of the op that verify checks against), so only the ops
that touch the image reach Core AI. The compression ops (`constexpr_*`) are the exception where a
lowering keeps them: Core AI then stores the weights compressed and expands them itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerasml.coreai.lowering.graph import Graph, Tensor
from kerasml.coreai.lowering.mil.compression import SparseHalf
from kerasml.coreai.lowering.mil.op import Op
from kerasml.coreai.lowering.registry import MIL_LOWERINGS
from kerasml.errors import KerasmlError
from kerasml.runtime.errors import UnsupportedModelError
from kerasml.runtime.mil import values as mil_values
from kerasml.runtime.mil.args import Args
from kerasml.runtime.registry import MIL_OPS

_FOLD_ERRORS = (ValueError, IndexError, TypeError, ArithmeticError, KeyError)


@dataclass(frozen=True)
class ProgramInput:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass
class LoweredProgram:
    """What the walk produced: every named value (Tensors and constants) and what the program says
    its result is (the `classify` op's probabilities, else the first output)."""

    values: dict
    probabilities: str
    labels: list | None
    op_outputs: list[tuple[str, str, str]]   # (op type, op name, first output) in program order
    notes: list[str] = field(default_factory=list)  # compressed weights decompressed at conversion


def program_inputs(spec) -> list[ProgramInput]:
    function = _main(spec)
    found = []
    for i in function.inputs:
        t = i.type.tensorType
        found.append(ProgramInput(i.name, mil_values.tensor_shape(t), np.dtype(mil_values.numpy_dtype(t.dataType))))
    return found


def lower_program(spec, folder: Path | None, graph: Graph, inputs: dict[str, Tensor]) -> LoweredProgram:
    """Walk the main function with `inputs` (program input name → Tensor) bound."""
    function = _main(spec)
    block = function.block_specializations[function.opset]
    blobs = mil_values.BlobFiles(folder)
    unknown = sorted({op.type for op in block.operations
                      if op.type not in MIL_LOWERINGS and op.type not in MIL_OPS and op.type not in ("const", "classify")})
    if unknown:
        raise UnsupportedModelError(f"the ML Program uses {', '.join(unknown)}, which kerasml cannot express in Core AI")
    env: dict = dict(inputs)
    labels, probabilities, op_outputs = None, None, []
    for op in block.operations:
        name = op.outputs[0].name if op.outputs else op.type
        if op.type == "const":
            env[name] = mil_values.decode(op.attributes["val"], blobs)
            continue
        if op.blocks:
            raise UnsupportedModelError(f"op '{name}' ({op.type}) has nested blocks (control flow), which "
                                        "kerasml cannot express in Core AI")
        bound = _bound_inputs(op, env, blobs)
        if op.type == "classify":
            probabilities, labels = _classify(op, bound, name)
            continue
        shapes, dtypes = _declared_outputs(op)
        with graph.provenance(name):
            results = _computed(op, name, bound, shapes, dtypes, graph)
        if len(results) != len(op.outputs):
            raise UnsupportedModelError(f"op '{name}' ({op.type}) has {len(op.outputs)} outputs; "
                                        f"its Core AI lowering gives {len(results)}")
        for out, value in zip(op.outputs, results):
            env[out.name] = value
        op_outputs.append((op.type, name, name))
    if probabilities is None:
        probabilities = block.outputs[0]
    return LoweredProgram(env, probabilities, labels, op_outputs, list(graph.notes))


def _main(spec):
    program = spec.mlProgram
    if "main" not in program.functions:
        raise KerasmlError("the ML Program has no 'main' function; convert the model again")
    function = program.functions["main"]
    if function.opset not in function.block_specializations:
        raise KerasmlError(f"the ML Program has no block for its opset {function.opset}; convert the model again")
    return function


def _bound_inputs(op, env: dict, blobs) -> dict[str, list]:
    bound: dict[str, list] = {}
    for param, argument in op.inputs.items():
        values = []
        for binding in argument.arguments:
            if binding.WhichOneof("binding") == "name":
                if binding.name not in env:
                    raise KerasmlError(f"op '{op.type}' reads '{binding.name}', which nothing produces; "
                                       "the model is malformed")
                values.append(env[binding.name])
            else:
                values.append(mil_values.decode(binding.value, blobs))
        bound[param] = values
    for param, value in op.attributes.items():      # iOS 16 constexpr ops keep their data here
        if param not in ("name", "val") and param not in bound:
            bound[param] = [mil_values.decode(value, blobs)]
    return bound


def _declared_outputs(op) -> tuple[list, list]:
    shapes, dtypes = [], []
    for out in op.outputs:
        t = out.type
        if t.WhichOneof("type") == "tensorType":
            shapes.append(mil_values.tensor_shape(t.tensorType))
            dtypes.append(np.dtype(mil_values.numpy_dtype(t.tensorType.dataType)))
        else:
            shapes.append(None)
            dtypes.append(None)
    return shapes, dtypes


def _computed(op, name: str, bound: dict, shapes: list, dtypes: list, graph: Graph) -> list:
    lowering = MIL_LOWERINGS.get(op.type)
    keeps = lowering is not None and getattr(lowering.fn, "keeps_compressed", False)
    batched = any(isinstance(v, Tensor) and v.batched for values in bound.values() for v in values)
    if not batched and not keeps:
        return _folded(op, name, _decompressed(bound), dtypes)
    if lowering is None:
        raise UnsupportedModelError(f"op '{name}' ({op.type}) has no Core AI lowering in kerasml yet")
    extra = sorted(set(bound) - lowering.params)
    if extra:
        raise UnsupportedModelError(f"op '{name}' ({op.type}) has parameter '{extra[0]}', which kerasml's "
                                    "Core AI lowering of it does not know")
    if not keeps:
        bound = {param: [v.array if isinstance(v, SparseHalf) else v for v in values]
                 for param, values in bound.items()}
    try:
        return lowering.fn(Op(name, op.type, bound, shapes, dtypes, graph))
    except (ValueError, IndexError, TypeError, UnsupportedModelError) as exc:
        if keeps:           # a compression Core AI cannot keep: the weights are stored decompressed
            graph.notes.append(f"op '{name}' ({op.type}) is decompressed at conversion: {exc}")
            return _folded(op, name, _decompressed(bound), dtypes)
        dense = _decompressed(bound)
        if dense is bound:
            if isinstance(exc, UnsupportedModelError):
                raise
            raise UnsupportedModelError(f"op '{name}' ({op.type}) cannot be expressed in Core AI: {exc}") from None
    # weights Core AI would decompress, which this op cannot take as they are: decompressed here
    # (what Core AI emitted for the first try is unused, and left out of the saved model)
    graph.notes.append(f"op '{name}' ({op.type}) reads its compressed weights decompressed")
    try:
        return lowering.fn(Op(name, op.type, dense, shapes, dtypes, graph))
    except (ValueError, IndexError, TypeError) as exc:
        raise UnsupportedModelError(f"op '{name}' ({op.type}) cannot be expressed in Core AI: {exc}") from None


def _decompressed(bound: dict) -> dict:
    """`bound` with compressed SHARED values as the NumPy arrays kerasml's runtime decompressed
    (`bound` itself when it has none)."""
    def dense(v):
        if isinstance(v, SparseHalf):
            return v.array
        if isinstance(v, Tensor) and not v.batched and v.dense is not None:
            return v.dense
        return v

    if not any(dense(v) is not v for values in bound.values() for v in values):
        return bound
    return {param: [dense(v) for v in values] for param, values in bound.items()}


def _folded(op, name: str, bound: dict, dtypes: list) -> list:
    """An op on constants only, computed once with kerasml's runtime and cast as the program declares."""
    flags = {param: [False] * len(values) for param, values in bound.items()}
    try:
        results = MIL_OPS[op.type](Args(name, op.type, bound, flags, dtypes))
    except KerasmlError:
        raise
    except _FOLD_ERRORS as exc:
        raise KerasmlError(f"op '{name}' ({op.type}) cannot run: {exc}") from None
    return [np.asarray(r).astype(d) if d is not None and isinstance(r, np.ndarray | np.generic) else r
            for r, d in zip(results, dtypes)]


def _classify(op, bound: dict, name: str) -> tuple[str, list]:
    (classes,) = bound["classes"]
    probabilities = op.inputs["probabilities"].arguments[0]
    if probabilities.WhichOneof("binding") != "name" or isinstance(classes, Tensor):
        raise UnsupportedModelError(f"op '{name}' (classify) with computed classes cannot be expressed in Core AI")
    labels = [v.item() if isinstance(v, np.ndarray) else v for v in classes]
    labels = [int(v) if isinstance(v, (int, np.integer)) else str(v) for v in labels]
    return probabilities.name, labels
