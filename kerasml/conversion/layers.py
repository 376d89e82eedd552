"""Which Keras layer each value of a converted model came from, recorded in the model itself
(`com.kerasml.layers`), so `kerasml diff` can compare the two models layer by Keras layer.

coremltools names every op after the TensorFlow node it came from, and a traced Keras model's nodes
carry their layer's name as a scope (`StatefulPartitionedCall_sequential_1_conv2d_10_1_convolutionx`:
layer `conv2d_10`; Keras 3 adds `_1` to every scope of a traced call). That is read before kerasml shortens the names and compresses the weights; those
steps keep the computing ops in order, so the names before and after are paired by aligning the two
sequences of op types. The record maps each Keras layer to the last value computed for it, its
output (kept that small: it travels inside every model); an op that matches no layer (the image
scaling, layout transposes) is left out, and so is a layer no op was named after (conversion fused
it into the one before, as a batch normalisation into its convolution).
"""

from __future__ import annotations

import difflib
import re

from kerasml.errors import KerasmlError

# Ops that hold or reshape weights rather than compute on the image, and the activation quantization
# w8a8 inserts: left out of the alignment, since compression adds and removes them.
_NOT_COMPUTING = ("const", "quantize", "dequantize", "classify")   # classify only names what the last op computed


def computing_values(spec) -> list[tuple[str, str]]:
    """(op or layer type, output name) of everything a model computes, in order."""
    model_type = spec.WhichOneof("Type")
    if model_type == "mlProgram":
        function = spec.mlProgram.functions["main"]
        found = []
        for op in function.block_specializations[function.opset].operations:
            if op.type in _NOT_COMPUTING or op.type.startswith("constexpr_") or not op.outputs:
                continue
            found += [(op.type, value.name) for value in op.outputs]
        return found
    network = getattr(spec, model_type, None)
    return [(layer.WhichOneof("layer"), name) for layer in getattr(network, "layers", []) for name in layer.output]


# Op and NeuralNetwork layer types → words in the class names of the Keras layers converted to them.
# coremltools renames some ops it wraps in layout transposes (a max pooling becomes `max_pool_0`), so
# their names no longer carry their layer; such an op goes to the one layer of a matching class
# between the layers of the ops around it.
_KERAS_CLASSES = {
    "max_pool": ("MaxPool",), "avg_pool": ("AveragePool",), "pooling": ("Pool",),
    "reduce_mean": ("GlobalAveragePool",), "reduce_max": ("GlobalMaxPool",), "reduce": ("GlobalAveragePool", "GlobalMaxPool"),
    "upsample_nearest_neighbor": ("UpSampling",), "upsample_bilinear": ("UpSampling", "Resizing"),
    "resize_bilinear": ("Resizing",), "resize_nearest_neighbor": ("Resizing",), "resize": ("Resizing",),
    "upsample": ("UpSampling",), "resizeBilinear": ("Resizing",), "crop_resize": ("Resizing",),
    "pad": ("ZeroPadding",), "padding": ("ZeroPadding",), "crop": ("Cropping",), "slice_by_index": ("Cropping",),
    "concat": ("Concatenate",),
}   # not convolutions: one may hold a batch normalisation folded into it, so its value is not its own


def keras_layer_names(keras_model) -> list[str]:
    return [layer.name for layer in getattr(keras_model, "layers", [])]


def keras_layer_classes(keras_model) -> list[tuple[str, str]]:
    """(name, class name) of the model's layers, in order."""
    return [(layer.name, type(layer).__name__) for layer in getattr(keras_model, "layers", [])]


def owners_filled(types: list[str], owners: list[str | None], keras_layers: list[tuple[str, str]]) -> list[str | None]:
    """`owners` (the Keras layer of each op, None where its name says none) with each unnamed op
    given the one layer of a class its type converts from (`_KERAS_CLASSES`) that lies, in Keras'
    order, between the layers of the nearest named ops before and after it and has no op of its own."""
    order = {name: i for i, (name, _) in enumerate(keras_layers)}
    named = {owner for owner in owners if owner is not None}
    filled = list(owners)
    for k, (kind, owner) in enumerate(zip(types, owners)):
        words = _KERAS_CLASSES.get(kind)
        if owner is not None or not words:
            continue
        before = next((order[o] for o in reversed(filled[:k]) if o in order), -1)
        after = next((order[o] for o in owners[k + 1:] if o in order), len(keras_layers))
        candidates = [name for name, cls in keras_layers[before + 1:after]
                      if name not in named and any(word in cls for word in words)]
        if len(candidates) == 1:
            filled[k] = candidates[0]
            named.add(candidates[0])
    return filled


# Keras layers that convert to more than one op of one type, the last of them the layer's output: a
# SeparableConv2D is a depthwise and then a pointwise convolution. TensorFlow folds a batch
# normalisation that follows into the pointwise one and names it after the normalisation, leaving the
# layer its depthwise convolution only, whose value is not the layer's output.
_OPS_PER_LAYER = {"SeparableConv": (("conv", "convolution"), 2)}


def outputs_only(types: list[str], owners: list[str | None], keras_layers: list[tuple[str, str]]) -> list[str | None]:
    """`owners` without the layers (`_OPS_PER_LAYER`) that kept fewer of their ops than make their
    output: conversion computed their output inside a later layer's op, so they have no value of
    their own (and `kerasml diff` compares them together with that layer)."""
    classes = dict(keras_layers)
    rules = {owner: rule for owner in set(owners) if owner is not None
             for word, rule in _OPS_PER_LAYER.items() if word in classes.get(owner, "")}
    kept = {owner: 0 for owner in rules}
    for kind, owner in zip(types, owners):
        if owner in rules and kind in rules[owner][0]:
            kept[owner] += 1
    incomplete = {owner for owner, (_, needed) in rules.items() if kept[owner] < needed}
    return [None if owner in incomplete else owner for owner in owners]


def scope_table(graph_def, layer_names: list[str], model_name: str = "") -> dict[str, str]:
    """{node name as coremltools writes it: Keras layer} for the traced graph's nodes, read from
    their name scopes (`StatefulPartitionedCall/sequential_1/conv2d_10_1/convolution`). Keras 3
    gives every scope of a traced call a suffix (`sequential_1` for the model `sequential`,
    `conv2d_10_1` for the layer `conv2d_10`), so a scope names the layer it is with one `_N` less."""
    names = set(layer_names)
    suffixed = any(re.fullmatch(re.escape(model_name) + r"_\d+", part)
                   for node in graph_def.node for part in node.name.split("/")[:2]) if model_name else False
    table = {}
    for node in graph_def.node:
        layer = None
        for part in node.name.split("/")[:-1]:        # the last part is the op itself
            base = re.sub(r"_\d+$", "", part) if suffixed else part
            if base in names:
                layer = base
        if layer is not None:
            table[_written(node.name)] = layer
    return table


def layers_of(names: list[str], table: dict[str, str]) -> list[str | None]:
    """The Keras layer of each value a converted model names: the longest traced node name its name
    begins with (coremltools derives op and layer names from the node's, sometimes with a suffix)."""
    found = []
    for name in names:
        written = _written(name)
        found.append(next((table[written[:end]] for end in range(len(written), 0, -1) if written[:end] in table),
                          None))
    return found


def _written(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def paired(before: list[tuple[str, str | None]], after: list[tuple[str, str]]) -> dict[str, str]:
    """{Keras layer: its last value's final name} from (type, layer) before the renaming steps and
    (type, final name) after, aligned by their type sequences."""
    record: dict[str, str] = {}
    matcher = difflib.SequenceMatcher(a=[t for t, _ in before], b=[t for t, _ in after], autojunk=False)
    for block in matcher.get_matching_blocks():
        for i in range(block.size):
            layer = before[block.a + i][1]
            if layer is not None:
                record[layer] = after[block.b + i][1]
    return record


def fp16_except(ct, fp32_layers: list[str] | None, keras_layers: list[tuple[str, str]], table: dict[str, str]):
    """float16 compute, except for the ops of the Keras layers named in `fp32_layers`
    (`keras_layers`: the model's (name, class) pairs)."""
    if not fp32_layers:
        return ct.precision.FLOAT16
    layer_names = [name for name, _ in keras_layers]
    unknown = [name for name in fp32_layers if name not in layer_names]
    if unknown:
        raise KerasmlError(f"--fp32-layers names {', '.join(unknown)}, which the model does not have; its "
                           f"layers are {', '.join(layer_names[:12])}{', ...' if len(layer_names) > 12 else ''}")
    keep = set(fp32_layers)
    owners_by_block: dict[int, dict[str, str | None]] = {}

    def owner(op) -> str | None:   # with its block's other ops, so an op renamed by coremltools is placed
        block = op.enclosing_block
        if id(block) not in owners_by_block:
            ops = [o for o in block.operations if o.op_type != "const"]   # constants sit apart, at the top
            found = owners_filled([o.op_type for o in ops], layers_of([o.name for o in ops], table), keras_layers)
            owners_by_block[id(block)] = dict(zip((o.name for o in ops), found))
        return owners_by_block[id(block)].get(op.name, layers_of([op.name], table)[0])

    def in_fp16(op) -> bool:   # coremltools' selector: True casts the op to float16
        return owner(op) not in keep

    return ct.transform.FP16ComputePrecision(op_selector=in_fp16)
