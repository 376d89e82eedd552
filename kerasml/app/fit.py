"""Whether a model fits the app: every problem, by kind, with the words for the user.

A model is first described as the app sees it — a Core ML model as `MLModelDescription` shows it
(inputs, class labels, the probability output, user-defined metadata), a Core AI model as Core
AI's asset summary shows it (functions with their inputs and outputs, creator-defined metadata).
The check reads only those descriptions, so DigitKit (which checks the same thing in the app) and
this module run one fixture of outcomes, tests/fixtures/contract-outcomes.json.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from kerasml.app.contract import AppContract

# Core ML specification version -> the iOS release that first runs it (a Core ML fact, not the app's).
IOS_FOR_SPEC = {1: 11, 2: 11, 3: 12, 4: 13, 5: 14, 6: 15, 7: 16, 8: 17, 9: 18}


@dataclasses.dataclass(frozen=True)
class Problem:
    kind: str                        # the fixture's reason kinds: inputs, labels, input_shape, ...
    text: str


# -- descriptions --------------------------------------------------------------------------------------
def describe_core_ml(spec) -> dict:
    """A Core ML spec as the app reads it from MLModelDescription."""
    from kerasml.model.coreml_spec import class_labels, image_colour

    inputs = []
    for feature in spec.description.input:
        kind = feature.type.WhichOneof("Type")
        if kind == "imageType":
            image = feature.type.imageType
            inputs.append({"name": feature.name, "type": "image", "width": int(image.width),
                           "height": int(image.height), "colour": image_colour(image.colorSpace) or "other"})
        else:
            inputs.append({"name": feature.name, "type": kind})
    labels = class_labels(spec)
    outputs = {f.name: f.type.WhichOneof("Type") for f in spec.description.output}
    probability = outputs.get(spec.description.predictedProbabilitiesName)
    return {"inputs": inputs, "labels": None if labels is None else [str(label) for label in labels],
            "probabilities": "dictionary" if probability == "dictionaryType" else probability,
            "metadata": dict(spec.description.metadata.userDefined)}


def describe_core_ai(path: Path, metadata) -> dict:
    """An .aimodel (already checked whole) as Core AI's asset summary shows it."""
    from kerasml.libs import coreai_authoring, coreai_notes_muted

    with coreai_notes_muted():
        summary = coreai_authoring().AIModelAsset.load(path).summary(include_statistics=False)
    functions = {}
    for name in summary.function_names:
        functions[name] = {"inputs": {n: _ndarray(t) for n, t in summary.function_inputs(name)},
                           "outputs": {n: _ndarray(t) for n, t in summary.function_outputs(name)}}
    return {"functions": functions, "metadata": dict(metadata.creator_defined)}


def _ndarray(text: str) -> dict:
    """"NDArray (Float32, ? × 28 × 28 × 1)" → {"scalar_type": "float32", "shape": [-1, 28, 28, 1]}."""
    match = re.fullmatch(r"NDArray \((\w+), (.*)\)", text.strip())
    if not match:
        return {"scalar_type": "image", "shape": []}
    dims = [-1 if d.strip() == "?" else int(d) for d in match.group(2).split("×")]
    return {"scalar_type": match.group(1).lower(), "shape": dims}


# -- the check -------------------------------------------------------------------------------------------
def problems(description: dict, fmt: str, contract: AppContract) -> list[Problem]:
    """Every reason the app cannot use the described model (empty when it fits)."""
    found = _core_ai_problems(description, contract) if fmt == "aimodel" else _core_ml_problems(description, contract)
    ink = _recorded_ink(description["metadata"], contract)
    if ink is not None and ink != contract.ink:
        found.append(Problem("ink", f"it was trained on {ink} images but the app gives it {contract.ink} images"))
    return found


def spec_version_problems(spec, contract: AppContract) -> list[Problem]:
    """The one thing only the spec shows: the iOS release its specification version needs."""
    ios = IOS_FOR_SPEC.get(spec.specificationVersion, 99)
    if ios <= contract.minimum_ios:
        return []
    return [Problem("ios", f"it needs iOS {ios if ios != 99 else 'newer than 18'} (specification version "
                           f"{spec.specificationVersion}) but the app targets iOS {contract.minimum_ios}")]


def _core_ml_problems(model: dict, contract: AppContract) -> list[Problem]:
    found = []
    inputs = model["inputs"]
    images = [f for f in inputs if f["type"] == "image"]
    if len(inputs) != 1 or len(images) != 1:
        kinds = ", ".join(f"{f['name']} ({f['type']})" for f in inputs)
        found.append(Problem("inputs", f"it must take exactly one image input, not {kinds or 'none'}"))
    for image in images[:1]:
        if (image["width"], image["height"]) != (contract.width, contract.height):
            found.append(Problem("input_size", f"its input {image['name']!r} is {image['width']}x{image['height']}, "
                                               f"not {contract.width}x{contract.height}"))
        if image["colour"] != contract.colour:
            found.append(Problem("colour", f"its input {image['name']!r} is {image['colour'].upper()}, "
                                           f"not {contract.colour.upper()}"))
    labels = model["labels"]
    if labels is None:
        found.append(Problem("not_classifier", "it is not a classifier (no class labels)"))
    else:
        found += _label_problems(labels, contract)
        if model["probabilities"] != "dictionary":
            found.append(Problem("probabilities", "it has no probability dictionary output for the top-3 bars"))
    return found


def _core_ai_problems(model: dict, contract: AppContract) -> list[Problem]:
    ai = contract.core_ai
    function = model["functions"].get(ai.function)
    if function is None:
        names = ", ".join(model["functions"]) or "none"
        return [Problem("function", f"it has no function named {ai.function} (it has {names})")]
    found = []
    for side, name, scalar, shape in (("input", ai.input_name, ai.input_type, ai.input_shape),
                                      ("output", ai.output_name, ai.output_type, ai.output_shape)):
        values = function[f"{side}s"]
        if name not in values:
            found.append(Problem(side, f"{ai.function} has no {side} named {name} (it has "
                                       f"{', '.join(values) or 'none'})"))
            continue
        value = values[name]
        if value["scalar_type"] != scalar:
            found.append(Problem(f"{side}_type", f"its {side} {name} is {value['scalar_type']}, not {scalar}"))
        elif not _shape_fits(value["shape"], shape):
            wanted = "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"
            found.append(Problem(f"{side}_shape", f"its {side} {name} is {value['shape']}, not {wanted}"))
    text = model["metadata"].get(ai.labels_key)
    try:
        labels = json.loads(text) if text is not None else None
    except ValueError:
        labels = None
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        found.append(Problem("labels_metadata", f"its {ai.labels_key} metadata is missing or not a JSON list "
                                                "of labels (convert it with kerasml)"))
    else:
        found += _label_problems(labels, contract)
    return found


def _shape_fits(shape: list, wanted: tuple) -> bool:
    """`wanted`'s None is the batch dimension: dynamic (-1) or exactly one image."""
    return len(shape) == len(wanted) and all(
        d in (-1, 1) if w is None else d == w for d, w in zip(shape, wanted))


def _label_problems(labels: list, contract: AppContract) -> list[Problem]:
    if len(labels) != len(contract.labels):
        return [Problem("labels", f"it has {len(labels)} labels, not {len(contract.labels)}")]
    if sorted(map(str, labels)) != sorted(contract.labels):
        return [Problem("labels", f"its labels are {', '.join(map(str, labels))}, not {', '.join(contract.labels)}")]
    return []


def _recorded_ink(metadata: dict, contract: AppContract) -> str | None:
    """The ink kerasml's preprocessing metadata records, None when there is none (or it is unreadable)."""
    text = metadata.get(contract.metadata_keys["preprocessing"], "")
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return None
    return value.get("ink") if isinstance(value, dict) else None
