"""Short names for the values inside an ML Program, each small constant written once: a smaller
.mlpackage that computes the same.

coremltools names every value after the TensorFlow op it came from, so a traced Keras model's
program is mostly names like `StatefulPartitionedCall_kerasml_1_batch_normalization_1_batchnorm_mul_1x_pad_type_0`,
each written two or three times (the value, its op, every use). For the default digit model that is
about 10 KiB of a 14 KiB program: 8% of the whole package once the weights are 4-bit palettes.
`shorten` renames each value after its op's type and a counter (`conv_0`, `relu_1`, constants `c7`,
compressed weights `w2`), keeping the names anyone can see: the model's inputs and outputs.
Nothing else in an ML Program refers to these names (weights are found by offset, not by name).

coremltools also writes every small argument as its own `const` op: each convolution and pooling
has its strides `[1, 1]`, pads `[0, 0, 0, 0]`, `pad_type "valid"` and so on, about 85 bytes each, a
fifth of the digit model's program. `deduplicate` keeps the first of identical in-line constants
and points the other uses at it (coremltools' own `const_deduplication` pass does this only for
tensors of 100+ values, never for strings or booleans). Sharing a constant is ordinary MIL: every
weight tensor is shared the same way when a layer is called twice.
"""

from __future__ import annotations

from collections import Counter


def shortened(mlmodel):
    """`mlmodel` with short value names (the same object when it is not an ML Program)."""
    from kerasml.libs import coremltools

    spec = mlmodel.get_spec()
    if spec.WhichOneof("Type") != "mlProgram":
        return mlmodel
    deduplicate(spec)
    shorten(spec)
    ct = coremltools()
    return ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True)


def shorten(spec) -> bool:
    """Rename the values of every function of an ML Program `spec` in place; False if not one."""
    if spec.WhichOneof("Type") != "mlProgram":
        return False
    features = {f.name for f in spec.description.input} | {f.name for f in spec.description.output}
    for function in spec.mlProgram.functions.values():
        keep = features | {value.name for value in function.inputs}
        names: dict[str, str] = {}
        counters: Counter = Counter()
        for block in function.block_specializations.values():
            _name_block(block, names, keep, counters)
        for block in function.block_specializations.values():
            _rename_block(block, names)
    return True


def deduplicate(spec) -> int:
    """Drop every in-line `const` op whose value (type and data) an earlier `const` of the same block
    holds, and point its uses at that one; returns how many went. Constants in weight files (found
    by offset) are left alone."""
    if spec.WhichOneof("Type") != "mlProgram":
        return 0
    dropped = 0
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            dropped += _deduplicate_block(block)
    return dropped


def _deduplicate_block(block) -> int:
    first: dict[bytes, str] = {}
    same: dict[str, str] = {}
    for op in block.operations:
        for nested in op.blocks:
            _deduplicate_block(nested)
        if op.type != "const" or len(op.outputs) != 1 or set(op.attributes) - {"name", "val"}:
            continue
        value = op.attributes["val"]
        if value.WhichOneof("value") != "immediateValue":
            continue
        key = value.SerializeToString(deterministic=True) + op.outputs[0].type.SerializeToString(deterministic=True)
        if key in first:
            same[op.outputs[0].name] = first[key]
        else:
            first[key] = op.outputs[0].name
    if not same:
        return 0
    keep = [op for op in block.operations if not (op.type == "const" and op.outputs and op.outputs[0].name in same)]
    del block.operations[:]
    block.operations.extend(keep)
    _rename_block(block, same)   # later uses, nested blocks included, read the first copy
    return len(same)


def _prefix(op_type: str) -> str:
    if op_type == "const":
        return "c"
    if op_type.startswith("constexpr_"):
        return "w"          # compressed weights: palettes, quantized and sparse tensors
    return op_type + "_"


def _name_block(block, names: dict[str, str], keep: set[str], counters: Counter) -> None:
    """Give every value defined in `block` (and the blocks nested in its ops) a new name."""
    taken = keep | set(names.values())

    def fresh(prefix: str) -> str:
        while True:
            name = f"{prefix}{counters[prefix]}"
            counters[prefix] += 1
            if name not in taken:
                taken.add(name)
                return name

    for value in block.inputs:      # loop variables of control-flow blocks
        if value.name not in keep and value.name not in names:
            names[value.name] = fresh("b")
    for op in block.operations:
        outputs = [value.name for value in op.outputs if value.name not in keep]
        if outputs:
            base = fresh(_prefix(op.type))
            for index, name in enumerate(outputs):
                names[name] = base if len(outputs) == 1 else f"{base}_{index}"
                taken.add(names[name])
        for nested in op.blocks:
            _name_block(nested, names, keep, counters)


def _rename_block(block, names: dict[str, str]) -> None:
    for value in block.inputs:
        value.name = names.get(value.name, value.name)
    for op in block.operations:
        for argument in op.inputs.values():
            for binding in argument.arguments:
                if binding.WhichOneof("binding") == "name":
                    binding.name = names.get(binding.name, binding.name)
        for value in op.outputs:
            value.name = names.get(value.name, value.name)
        if "name" in op.attributes and op.outputs:
            strings = op.attributes["name"].immediateValue.tensor.strings.values
            if len(strings) == 1:
                strings[0] = op.outputs[0].name
        for nested in op.blocks:
            _rename_block(nested, names)
    for index, name in enumerate(block.outputs):
        block.outputs[index] = names.get(name, name)
