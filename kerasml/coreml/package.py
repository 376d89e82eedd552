"""Put a Core ML model into the demo app, after checking that the app can use it.

What the app needs from a model is written once, in the app's own `app-contract.json` (input size,
colour and ink, labels, the minimum iOS, the metadata keys it reads, its confidence threshold).
`package_model` reads that file from the app folder it packages into and refuses a model that
breaks it, with the reason, so a model that would fail in Xcode or on the phone fails here first,
on Linux. The app decodes the same file through DigitKit (`AppContract`) and checks the model it
loads against it, so the two checks cannot drift apart.

The contract is read from the app folder rather than shipped inside the Python package: packaging
always needs that folder (the model is copied into it), and the contract describes that copy of
the app; an installed wheel packaging into an older or forked app then checks what that app needs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from kerasml.errors import KerasmlError
from kerasml.files import atomic_output
from kerasml.coreml.inspect import load_spec
from kerasml.coreml.spec import class_labels

PROJECT = "DigitDemo.xcodeproj"
CONTRACT = "app-contract.json"
# Core ML specification version -> the iOS release that first runs it (a Core ML fact, not the app's).
IOS_FOR_SPEC = {1: 11, 2: 11, 3: 12, 4: 13, 5: 14, 6: 15, 7: 16, 8: 17, 9: 18}


@dataclasses.dataclass(frozen=True)
class AppContract:
    """The parts of `app-contract.json` that decide whether a model fits."""

    model_file: Path
    minimum_ios: int
    width: int
    height: int
    colour: str                     # "grayscale" or "rgb"
    ink: str                        # "white-on-black" or "black-on-white"
    labels: tuple[str, ...]
    metadata_keys: dict[str, str]
    minimum_confidence: float
    raster_side: int                # drawings are rasterised for the model at this side ...
    stroke_divisor: int             # ... with strokes 1/stroke_divisor of the drawing's extent wide
    minimum_stroke: float           # ... and at least this many pixels


def load_contract(app_dir: Path = Path("ios_app")) -> AppContract:
    path = Path(app_dir) / CONTRACT
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        model, image = data["model"], data["model"]["input"]
        return AppContract(
            model_file=Path(model["file"]), minimum_ios=int(model["minimum_ios"]),
            width=int(image["width"]), height=int(image["height"]), colour=str(image["colour"]),
            ink=str(image["ink"]), labels=tuple(str(label) for label in model["labels"]),
            metadata_keys={str(k): str(v) for k, v in data["metadata_keys"].items()},
            minimum_confidence=float(data["reading"]["minimum_confidence"]),
            raster_side=int(data["drawing"]["raster_side"]),
            stroke_divisor=int(data["drawing"]["stroke_divisor"]),
            minimum_stroke=float(data["drawing"]["minimum_stroke"]))
    except FileNotFoundError:
        raise KerasmlError(f"{path} is missing: the app folder must hold the contract its models are "
                           "checked against (ios_app/app-contract.json in a kerasml checkout)") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KerasmlError(f"{path} is not a valid app contract ({type(exc).__name__}: {exc}); "
                           "restore it from the kerasml repository") from None


def package_model(model: Path, app_dir: Path = Path("ios_app"), force: bool = True) -> Path:
    """Check `model` fits the demo app and copy it to where the project expects it; return that path."""
    model, app_dir = Path(model), Path(app_dir)
    spec = _load_spec(model)
    if not (app_dir / PROJECT).is_dir():
        raise KerasmlError(f"{app_dir} has no {PROJECT}; pass --app with the folder that holds it "
                           "(ios_app in a kerasml checkout)")
    contract = load_contract(app_dir)
    problems = check_spec(spec, contract)
    if problems:
        raise KerasmlError(f"{model} does not fit the demo app: {'; '.join(problems)}; "
                           f"train and convert a {contract.width}x{contract.height} {contract.colour} "
                           f"{len(contract.labels)}-class classifier "
                           "(kerasml convert MODEL --labels digits --format mlmodel)")
    destination = app_dir / contract.model_file
    if destination.exists() and os.path.samefile(model, destination):
        return destination
    with atomic_output(destination, force=force) as temporary:
        shutil.copyfile(model, temporary)
    return destination


def next_steps(app_dir: Path = Path("ios_app")) -> list[str]:
    """What to do after packaging, one line each, for the CLI to print."""
    project = Path(app_dir) / PROJECT
    return [
        f"open {project} in Xcode 16 or later (on a Mac)",
        "pick an iPhone or iPad simulator, or your device (then choose your team under "
        "Signing & Capabilities)",
        "press Run (Cmd-R), draw a digit and lift your finger to see it recognised, "
        "or pick a photo of a digit written on paper",
    ]


def _load_spec(model: Path):
    if model.suffix == ".mlpackage" or model.is_dir():
        raise KerasmlError(f"{model} is an ML Program package; the demo app compiles one .mlmodel "
                           "file: convert again with --format mlmodel")
    if not model.is_file():
        raise KerasmlError(f"{model} does not exist; give the .mlmodel file `kerasml convert` wrote")
    if model.suffix != ".mlmodel":
        raise KerasmlError(f"{model} is not a .mlmodel file; convert the model first "
                           "(kerasml convert MODEL --labels digits --format mlmodel)")
    return load_spec(model)


def check_spec(spec, contract: AppContract) -> list[str]:
    """Every reason the app cannot use this model specification (empty when it fits)."""
    problems = []
    ios = IOS_FOR_SPEC.get(spec.specificationVersion, 99)
    if ios > contract.minimum_ios:
        problems.append(f"it needs iOS {ios if ios != 99 else 'newer than 18'} "
                        f"(specification version {spec.specificationVersion}) but the app targets "
                        f"iOS {contract.minimum_ios}")
    images = [f for f in spec.description.input if f.type.WhichOneof("Type") == "imageType"]
    if len(spec.description.input) != 1 or len(images) != 1:
        kinds = ", ".join(f"{f.name} ({f.type.WhichOneof('Type')})" for f in spec.description.input)
        problems.append(f"it must take exactly one image input, not {kinds or 'none'}")
    for feature in images[:1]:
        image = feature.type.imageType
        colour = image.ColorSpace.Name(image.colorSpace)
        if (image.width, image.height) != (contract.width, contract.height):
            problems.append(f"its input {feature.name!r} is {image.width}x{image.height}, "
                            f"not {contract.width}x{contract.height}")
        if colour != contract.colour.upper():
            problems.append(f"its input {feature.name!r} is {colour}, not {contract.colour.upper()}")
    problems += _label_problems(class_labels(spec), contract)
    ink = _preprocessing(spec, contract).get("ink", contract.ink)
    if ink != contract.ink:
        problems.append(f"it was trained on {ink} images but the app gives it {contract.ink} images")
    probabilities = spec.description.predictedProbabilitiesName
    outputs = {f.name: f.type.WhichOneof("Type") for f in spec.description.output}
    if class_labels(spec) is not None and outputs.get(probabilities) != "dictionaryType":
        problems.append("it has no probability dictionary output for the top-3 bars")
    return problems


def _label_problems(labels: list | None, contract: AppContract) -> list[str]:
    if labels is None:
        return ["it is not a classifier (no class labels)"]
    if len(labels) != len(contract.labels):
        return [f"it has {len(labels)} labels, not {len(contract.labels)}"]
    if sorted(map(str, labels)) != sorted(contract.labels):
        return [f"its labels are {', '.join(map(str, labels))}, not {', '.join(contract.labels)}"]
    return []


def _preprocessing(spec, contract: AppContract) -> dict:
    """The preprocessing metadata kerasml convert writes, or {} for other models."""
    text = spec.description.metadata.userDefined.get(contract.metadata_keys["preprocessing"], "")
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
