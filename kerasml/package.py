"""Put a Core ML model into the demo app, after checking that the app can use it.

The app (`ios_app/DigitDemo.xcodeproj`) compiles one model file, `DigitDemo/DigitClassifier.mlmodel`,
and feeds it the 28x28 grayscale image DigitKit prepares; it shows the classifier's
probabilities. `package_model` refuses anything else with the reason, so a model that would fail
in Xcode or on the phone fails here first, on Linux.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from kerasml.errors import KerasmlError
from kerasml.files import atomic_output
from kerasml.inspect import class_labels, load_spec

PROJECT = "DigitDemo.xcodeproj"
MODEL_IN_APP = Path("DigitDemo/DigitClassifier.mlmodel")   # the path the Xcode project references
IMAGE_SIDE = 28
LABEL_COUNT = 10
# Core ML specification version -> the iOS release that first runs it; the app targets iOS 16.
IOS_FOR_SPEC = {1: 11, 2: 11, 3: 12, 4: 13, 5: 14, 6: 15, 7: 16, 8: 17, 9: 18}
APP_IOS = 16


def package_model(model: Path, app_dir: Path = Path("ios_app"), force: bool = True) -> Path:
    """Check `model` fits the demo app and copy it to where the project expects it; return that path."""
    model, app_dir = Path(model), Path(app_dir)
    spec = _load_spec(model)
    problems = check_spec(spec)
    if problems:
        raise KerasmlError(f"{model} does not fit the demo app: {'; '.join(problems)}; "
                           "train and convert a 28x28 grayscale 10-class classifier "
                           "(kerasml convert MODEL --labels digits --format mlmodel)")
    if not (app_dir / PROJECT).is_dir():
        raise KerasmlError(f"{app_dir} has no {PROJECT}; pass --app with the folder that holds it "
                           "(ios_app in a kerasml checkout)")
    destination = app_dir / MODEL_IN_APP
    if destination.exists() and os.path.samefile(model, destination):
        return destination
    with atomic_output(destination, force=force) as temporary:
        shutil.copyfile(model, temporary)
    return destination


def next_steps(app_dir: Path = Path("ios_app")) -> list[str]:
    """What to do after packaging, one line each, for the CLI to print."""
    project = Path(app_dir) / PROJECT
    return [
        f"open {project} in Xcode 15 or later (on a Mac)",
        "pick an iPhone or iPad simulator, or your device (then choose your team under "
        "Signing & Capabilities)",
        "press Run (Cmd-R), draw a digit and lift your finger to see it recognised",
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


def check_spec(spec) -> list[str]:
    """Every reason the app cannot use this model specification (empty when it fits)."""
    problems = []
    ios = IOS_FOR_SPEC.get(spec.specificationVersion, 99)
    if ios > APP_IOS:
        problems.append(f"it needs iOS {ios if ios != 99 else 'newer than 18'} "
                        f"(specification version {spec.specificationVersion}) but the app targets "
                        f"iOS {APP_IOS}")
    images = [f for f in spec.description.input if f.type.WhichOneof("Type") == "imageType"]
    if len(spec.description.input) != 1 or len(images) != 1:
        kinds = ", ".join(f"{f.name} ({f.type.WhichOneof('Type')})" for f in spec.description.input)
        problems.append(f"it must take exactly one image input, not {kinds or 'none'}")
    for feature in images[:1]:
        image = feature.type.imageType
        colour = image.ColorSpace.Name(image.colorSpace)
        if (image.width, image.height) != (IMAGE_SIDE, IMAGE_SIDE):
            problems.append(f"its input {feature.name!r} is {image.width}x{image.height}, not 28x28")
        if colour != "GRAYSCALE":
            problems.append(f"its input {feature.name!r} is {colour}, not GRAYSCALE")
    labels = class_labels(spec)
    if labels is None:
        problems.append("it is not a classifier (no class labels)")
    elif len(labels) != LABEL_COUNT:
        problems.append(f"it has {len(labels)} labels, not {LABEL_COUNT}")
    ink = _preprocessing(spec).get("ink", "white-on-black")
    if ink != "white-on-black":
        problems.append(f"it was trained on {ink} images but the app draws white ink on black")
    probabilities = spec.description.predictedProbabilitiesName
    outputs = {f.name: f.type.WhichOneof("Type") for f in spec.description.output}
    if labels is not None and outputs.get(probabilities) != "dictionaryType":
        problems.append("it has no probability dictionary output for the top-3 bars")
    return problems


def _preprocessing(spec) -> dict:
    """The `com.kerasml.preprocessing` metadata kerasml convert writes, or {} for other models."""
    text = spec.description.metadata.userDefined.get("com.kerasml.preprocessing", "")
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
