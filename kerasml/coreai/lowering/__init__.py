"""A Core ML image classifier (ML Program or NeuralNetwork) as one Core AI function.

`lower_model(spec, folder)` builds the module kerasml saves as an `.aimodel`: one function,
`classify`, that takes raw pixels — float32 [N, H, W, C], 0-255, RGB order, N open — and returns
`labelProbabilities`, float32 [N, classes] in label order. Everything the Core ML model did to
its image input happens inside: the channel order (BGR models), the image preprocessing (scale
and bias, part of an ML Program, a scaler in a NeuralNetwork) and any reshaping, so the app and
kerasml hand it the same pixels they hand the Core ML model.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np

from kerasml.libs import coreai_authoring
from kerasml.coreai.lowering.graph import FOLDED, Graph, Tensor, u32
from kerasml.model.coreml_spec import NN_TYPES, image_colour
from kerasml.model.features import CORE_AI_FUNCTION, CORE_AI_INPUT, CORE_AI_OUTPUT
from kerasml.errors import KerasmlError
from kerasml.runtime.errors import UnsupportedModelError

FUNCTION, INPUT, OUTPUT = CORE_AI_FUNCTION, CORE_AI_INPUT, CORE_AI_OUTPUT   # model/features.py


@dataclass(frozen=True)
class PixelInput:
    """What `classify` takes: [N, height, width, channels] raw pixels, RGB order; `colour` is the
    order the model itself reads (kerasml reverses RGB inside for "bgr")."""

    height: int
    width: int
    channels: int
    colour: str


@dataclass
class LoweredModel:
    module: object
    pixels: PixelInput
    labels: list
    op_outputs: list = field(default_factory=list)   # (op type, op name, value name) in program order
    notes: list[str] = field(default_factory=list)     # what the lowering did that the user should know
    same_as: dict = field(default_factory=dict)        # value name -> the earlier name Core AI computes it as


def lower_model(spec, folder, labels: list | None = None) -> LoweredModel:
    """The Core AI module for a parsed Core ML spec (`folder`: where an ML Program's weights are);
    `labels` replaces the model's own class labels (required when it has none)."""
    A = coreai_authoring()
    model_type = spec.WhichOneof("Type")
    if model_type not in ("mlProgram", *NN_TYPES):
        raise UnsupportedModelError(f"model type '{model_type}' is not a neural network or ML Program; kerasml "
                                    "converts image classifiers of those two kinds to Core AI")
    feature, pixels = _image_input(spec)
    own_labels = _own_labels(spec, model_type)
    labels = list(labels) if labels is not None else own_labels
    if not labels:
        raise KerasmlError("the model has no class labels; pass --labels (a preset or a comma-separated list)")
    if own_labels and len(own_labels) != len(labels):
        raise KerasmlError(f"--labels gives {len(labels)} labels but the model has {len(own_labels)} classes")
    graph = Graph()
    found: dict = {}

    def body(image):
        lowered = _lower_body(spec, folder, model_type, graph, feature, pixels, image)
        probabilities = lowered.values[lowered.probabilities]
        if not isinstance(probabilities, Tensor) or not probabilities.batched:
            raise UnsupportedModelError("the model's probabilities do not depend on its image")
        width = int(np.prod(probabilities.shape))
        if width != len(labels):
            raise KerasmlError(f"the network gives {width} probabilities for {len(labels)} labels; "
                               "the model is malformed (or --labels lists the wrong number)")
        found["op_outputs"] = lowered.op_outputs
        found["notes"] = list(getattr(lowered, "notes", []) or graph.notes)
        found["same_as"] = _same_values(lowered.values)
        return graph.rows(probabilities)

    module = A.Module.create()
    function = _signature(body, A, pixels, A.TensorSpec((-1, len(labels)), np.float32, name=OUTPUT))
    with module:
        A.graph(function)
    return LoweredModel(module, pixels, labels, op_outputs=found.get("op_outputs", []),
                        notes=_notes(found.get("notes", [])), same_as=found.get("same_as", {}))


def _same_values(values: dict) -> dict[str, str]:
    """Names whose Core AI value an earlier name already holds (a reshape that changed nothing Core AI
    sees, an identity): no op carries them, so they are read where the value was made."""
    first: dict[int, str] = {}
    same = {}
    for name, value in values.items():
        if isinstance(value, Tensor) and value.batched:
            key = id(value.value)
            if key in first:
                same[name] = first[key]
            else:
                first[key] = name
    return same


def _notes(found: list[str]) -> list[str]:
    """The lowering's notes as convert prints them: one line, the first few ops named."""
    if not found:
        return []
    shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
    return [f"note: {len(found)} weight tensor(s) could not stay compressed in Core AI and are stored "
            f"dense: {shown}"]


def _signature(body, A, pixels: PixelInput, output):
    """`body` as a function Core AI's @graph can read: one annotated image input, an annotated output."""
    def classify(image):
        return body(image)

    image = inspect.Parameter(INPUT, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[
        A.Value, A.TensorSpec((-1, pixels.height, pixels.width, pixels.channels), np.float32, name=INPUT)])
    returns = Annotated[A.Value, output]
    classify.__signature__ = inspect.Signature([image], return_annotation=returns)
    classify.__annotations__ = {INPUT: image.annotation, "return": returns}
    classify.__name__ = FUNCTION
    return classify


def _image_input(spec):
    inputs = list(spec.description.input)
    if len(inputs) != 1 or inputs[0].type.WhichOneof("Type") != "imageType":
        kinds = ", ".join(f"{f.name} ({f.type.WhichOneof('Type')})" for f in inputs)
        raise UnsupportedModelError(f"the model takes {kinds}; kerasml converts image classifiers with one "
                                    "image input to Core AI")
    feature = inputs[0]
    image = feature.type.imageType
    colour = image_colour(image.colorSpace)
    if colour is None:
        raise UnsupportedModelError(f"input '{feature.name}' has image colour space {image.colorSpace}, "
                                    "which kerasml cannot convert")
    channels = 1 if colour == "grayscale" else 3
    return feature, PixelInput(int(image.height), int(image.width), channels, colour)


def _own_labels(spec, model_type: str) -> list:
    from kerasml.model.coreml_spec import class_labels

    labels = class_labels(spec)
    return [int(v) if isinstance(v, (int, np.integer)) else str(v) for v in labels] if labels else []


def _lower_body(spec, folder, model_type, graph: Graph, feature, pixels: PixelInput, image):
    """The Core ML model's computation on the raw pixels `image` (N, H, W, C)."""
    A = graph.A
    value = image
    if pixels.colour == "bgr":                     # the model reads B, G, R: Core ML reorders the image
        value = A.reverse(value, np.asarray([3], np.int32))
    value = A.transpose(value, u32([0, 3, 1, 2]))  # (N, C, H, W): Core ML hands images over channels first
    tensor = Tensor(value, (1, pixels.channels, pixels.height, pixels.width), np.dtype(np.float32), FOLDED)
    if model_type == "mlProgram":
        from kerasml.coreai.lowering.mil import lower_program, program_inputs

        (program_input,) = [i for i in program_inputs(spec) if i.name == feature.name] or [None]
        if program_input is None:
            raise KerasmlError(f"the ML Program has no input '{feature.name}'; the model is malformed")
        tensor = graph.reshape(tensor, program_input.shape)
        if program_input.dtype != np.float32:
            tensor = graph.unary(lambda v: A.cast(v, program_input.dtype.type), tensor, program_input.dtype)
        return lower_program(spec, folder, graph, {feature.name: tensor})
    from kerasml.coreai.lowering.nn import lower_network

    return lower_network(spec, graph, {feature.name: tensor})
