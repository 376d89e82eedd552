"""Which layer pays for compression: each weight tensor compressed alone, what it costs in accuracy
and what it saves in size; and the per-layer mix `--precision auto` keeps when one scheme for all
layers is not the smallest within the accuracy budget.

A layer's weights are compressed through coremltools' own per-op configuration
(`OptimizationConfig(op_name_configs=...)`), so a mix is one ordinary compressed ML Program that
every format kerasml writes from it (.mlpackage, and the .aimodel lowered from it) stores as such.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from kerasml.model.precision import BY_NAME, WEIGHT_THRESHOLD
from kerasml.files import path_size

WEIGHTED = ("conv", "linear", "matmul", "conv_transpose")


@dataclasses.dataclass
class OpCost:
    """One weight tensor compressed alone."""

    op: str                      # the op that reads the weights (its name in the ML Program)
    layer: str                   # the Keras layer it belongs to
    weights: int                 # values in the tensor
    saving_bytes: int            # how much smaller the model is
    accuracy: float
    drop_points: float


def weight_ops(spec) -> list[tuple[str, int]]:
    """(op name, weight count) of the ops that read a constant weight tensor big enough to compress,
    in program order."""
    function = spec.mlProgram.functions["main"]
    ops = list(function.block_specializations[function.opset].operations)
    sizes = {}
    for op in ops:
        if op.type == "const" and op.outputs:
            dims = op.outputs[0].type.tensorType.dimensions
            sizes[op.outputs[0].name] = int(np.prod([d.constant.size for d in dims])) if dims else 1
    found = []
    for op in ops:
        if op.type in WEIGHTED and op.outputs:
            argument = op.inputs.get("weight") or op.inputs.get("y")
            name = argument.arguments[0].name if argument and argument.arguments else None
            if name in sizes and sizes[name] >= WEIGHT_THRESHOLD:
                found.append((op.outputs[0].name, sizes[name]))
    return found


def layers_of_ops(spec, record: dict[str, str], op_names: list[str]) -> dict[str, str]:
    """The Keras layer of each op: the layer whose recorded output is the first at or after the op."""
    function = spec.mlProgram.functions["main"]
    order = [v.name for op in function.block_specializations[function.opset].operations for v in op.outputs]
    position = {name: i for i, name in enumerate(order)}
    outputs = sorted((position[v], layer) for layer, v in record.items() if v in position)
    found = {}
    for name in op_names:
        at = position.get(name, -1)
        found[name] = next((layer for p, layer in outputs if p >= at), name)
    return found


def compressed(reference, schemes_by_op: dict[str, str]):
    """`reference` (an uncompressed ML Program MLModel) with each named op's weights compressed by its
    scheme (palette4 and palette2 tensors under PALETTE4_THRESHOLD values get palette6, as the
    uniform scheme does)."""
    import coremltools.optimize.coreml as cto

    from kerasml.conversion.short_names import shortened
    from kerasml.libs import quiet_output

    sizes = dict(weight_ops(reference.get_spec()))
    by_kind: dict[str, dict] = {}
    for op, name in schemes_by_op.items():
        scheme = BY_NAME[name]
        if scheme.program_config is None:
            continue
        config = scheme.program_config(cto)
        if scheme.kind == "palette" and scheme.fallbacks and sizes.get(op, 0) < scheme.weight_threshold:
            config = scheme.fallbacks[0](cto)      # too few values for so few levels: a larger table
        by_kind.setdefault(scheme.kind, {})[op] = config
    model = reference
    with quiet_output():
        for kind, configs in by_kind.items():
            compressor = cto.palettize_weights if kind == "palette" else cto.linear_quantize_weights
            model = compressor(model, cto.OptimizationConfig(op_name_configs=configs))
    return model if model is reference else shortened(model)


def measure(model, images: np.ndarray, labels: np.ndarray) -> tuple[int, float]:
    """(bytes as an .mlpackage, accuracy on the images with kerasml's runtime)."""
    from kerasml.runtime import load_model

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "candidate.mlpackage"
        model.save(str(path))
        predictions = load_model(path).predict_probabilities(images).argmax(axis=1)
        return path_size(path), float((predictions == labels).mean())


def sensitivity(reference, record: dict[str, str], precision: str, images: np.ndarray, labels: np.ndarray,
                say: Callable[[str], None] = print) -> tuple[list[OpCost], int, float]:
    """(each weight tensor compressed alone with `precision`, reference size, reference accuracy)."""
    spec = reference.get_spec()
    ops = weight_ops(spec)
    owners = layers_of_ops(spec, record, [op for op, _ in ops])
    size, accuracy = measure(reference, images, labels)
    costs = []
    for index, (op, count) in enumerate(ops, 1):
        say(f"  {index}/{len(ops)} {owners[op]} ({op}, {count:,} weights)")
        model_size, model_accuracy = measure(compressed(reference, {op: precision}), images, labels)
        costs.append(OpCost(op, owners[op], count, size - model_size, model_accuracy,
                            round(100 * (accuracy - model_accuracy), 4)))
    return costs, size, accuracy


def mixed(reference, costs: list[OpCost], small: str, safe: str, images: np.ndarray, labels: np.ndarray,
          reference_accuracy: float, max_drop: float, say: Callable[[str], None] = print):
    """(model, {op: scheme}, size, accuracy) of the smallest mix found within `max_drop` points: every
    tensor `small`, then the ones that cost the most accuracy per byte saved moved to `safe`, as few
    as the budget allows (found by bisection over that order); None when even all-`safe` misses."""
    order = sorted(costs, key=lambda c: c.drop_points / max(c.saving_bytes, 1), reverse=True)

    def trial(moved: int):
        schemes = {c.op: (safe if i < moved else small) for i, c in enumerate(order)}
        model = compressed(reference, schemes)
        size, accuracy = measure(model, images, labels)
        say(f"  {len(order) - moved} of {len(order)} tensors {small}, the rest {safe}: "
            f"{100 * (reference_accuracy - accuracy):+.2f} points")
        return model, schemes, size, accuracy

    low, high = 0, len(order)            # the smallest count moved to `safe` that keeps the budget
    best = None
    while low <= high:
        middle = (low + high) // 2
        result = trial(middle)
        if 100 * (reference_accuracy - result[3]) <= max_drop:
            best, high = result, middle - 1
        else:
            low = middle + 1
    return best
