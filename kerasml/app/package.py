"""Put a model into the demo app, after checking that the app can use it.

A Core ML `.mlmodel` becomes the model every iOS version runs (`model.file` in the contract); a Core
AI `.aimodel` the one the app prefers on iOS 27 and later (`core_ai.file`, inside a folder the
project copies as it is, so neither Xcode 16 nor Xcode 27 compiles it). A model that breaks the
contract is refused with every reason, so a model that would fail in Xcode or on the phone fails
here first, on Linux.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kerasml.app.contract import PROJECT, load_contract
from kerasml.app.fit import describe_core_ai, describe_core_ml, problems, spec_version_problems
from kerasml.errors import KerasmlError
from kerasml.files import atomic_output


def package_model(model: Path, app_dir: Path = Path("ios_app"), force: bool = True) -> Path:
    """Check `model` fits the demo app and copy it to where the project expects it; return that path."""
    model, app_dir = Path(model), Path(app_dir)
    fmt = _format_of(model)
    if not (app_dir / PROJECT).is_dir():
        raise KerasmlError(f"{app_dir} has no {PROJECT}; pass --app with the folder that holds it "
                           "(ios_app in a kerasml checkout)")
    contract = load_contract(app_dir)
    if fmt == "aimodel":
        from kerasml.model.aimodel import check_asset

        found = problems(describe_core_ai(model, check_asset(model)), "aimodel", contract)
        destination, how = app_dir / contract.core_ai.model_file, "--format aimodel"
    else:
        from kerasml.model.inspect import load_spec

        spec = load_spec(model)
        found = spec_version_problems(spec, contract) + problems(describe_core_ml(spec), "mlmodel", contract)
        destination, how = app_dir / contract.model_file, "--format mlmodel"
    if found:
        raise KerasmlError(f"{model} does not fit the demo app: {'; '.join(p.text for p in found)}; "
                           f"train and convert a {contract.width}x{contract.height} {contract.colour} "
                           f"{len(contract.labels)}-class classifier (kerasml convert MODEL --labels digits {how})")
    if destination.exists() and os.path.samefile(model, destination):
        return destination
    with atomic_output(destination, force=force) as temporary:
        if fmt == "aimodel":
            shutil.copytree(model, temporary, symlinks=False)
        else:
            shutil.copyfile(model, temporary)
    return destination


def next_steps(app_dir: Path = Path("ios_app")) -> list[str]:
    """What to do after packaging, one line each, for the CLI to print."""
    project = Path(app_dir) / PROJECT
    return [
        f"open {project} in Xcode 16 or later (on a Mac); Xcode 27 also builds the Core AI path (iOS 27+)",
        "pick an iPhone or iPad simulator, or your device (then choose your team under "
        "Signing & Capabilities)",
        "press Run (Cmd-R), draw a digit and lift your finger to see it recognised, "
        "or pick a photo of a digit written on paper",
    ]


def _format_of(model: Path) -> str:
    if model.suffix == ".aimodel":
        return "aimodel"
    if model.suffix == ".mlpackage" or model.is_dir():
        raise KerasmlError(f"{model} is an ML Program package; the demo app compiles one .mlmodel "
                           "file: convert again with --format mlmodel (or --format aimodel for iOS 27+)")
    if not model.is_file():
        raise KerasmlError(f"{model} does not exist; give the .mlmodel or .aimodel `kerasml convert` wrote")
    if model.suffix != ".mlmodel":
        raise KerasmlError(f"{model} is not a .mlmodel file or an .aimodel folder; convert the model first "
                           "(kerasml convert MODEL --labels digits --format mlmodel)")
    return "mlmodel"
