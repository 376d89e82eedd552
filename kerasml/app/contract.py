"""`app-contract.json`: what a model must look like for the DigitDemo app, in one place.

`kerasml package` reads it from the app folder it packages into, DigitKit decodes the same file
(`AppContract`), and the app checks the model it loads against it. Packaging reads the target app's
copy (an installed wheel packaging into an older or forked app checks what that app needs); how the
app reads a drawing (`reading.py`, for `kerasml try` and `predict`) comes from the copy shipped
inside kerasml (`bundled_contract`: kerasml/app/app-contract.json, a link to
ios_app/app-contract.json in the repository, copied into the wheel).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

from kerasml.errors import KerasmlError

PROJECT = "DigitDemo.xcodeproj"
CONTRACT = "app-contract.json"


@dataclasses.dataclass(frozen=True)
class CoreAIContract:
    """The optional Core AI model the app prefers on iOS 27 and later."""

    model_file: Path
    minimum_ios: int
    function: str
    input_name: str
    input_type: str
    input_shape: tuple                 # None: the batch dimension (dynamic or 1)
    output_name: str
    output_type: str
    output_shape: tuple
    labels_key: str
    version_key: str


@dataclasses.dataclass(frozen=True)
class AppContract:
    """The parts of `app-contract.json` that decide whether a model fits, and how the app reads."""

    model_file: Path
    minimum_ios: int
    width: int
    height: int
    colour: str                     # "grayscale" or "rgb"
    ink: str                        # "white-on-black" or "black-on-white"
    labels: tuple[str, ...]
    metadata_keys: dict[str, str]
    minimum_confidence: float       # the app answers only when its best guess reaches this
    minimum_ink_extent: float       # ink spanning less of the canvas than this is a tap, not a digit
    top: int                        # guesses the app shows
    raster_side: int                # drawings are rasterised for the model at this side ...
    stroke_divisor: int             # ... with strokes 1/stroke_divisor of the drawing's extent wide
    minimum_stroke: float           # ... and at least this many pixels
    screen_stroke_divisor: int      # on screen, strokes are 1/screen_stroke_divisor of the canvas side
    core_ai: CoreAIContract
    wording: dict[str, str]         # what the app and `kerasml try` say for each outcome of a reading


def load_contract(app_dir: Path = Path("ios_app")) -> AppContract:
    path = Path(app_dir) / CONTRACT
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        model, image, ai = data["model"], data["model"]["input"], data["core_ai"]
        return AppContract(
            model_file=Path(model["file"]), minimum_ios=int(model["minimum_ios"]),
            width=int(image["width"]), height=int(image["height"]), colour=str(image["colour"]),
            ink=str(image["ink"]), labels=tuple(str(label) for label in model["labels"]),
            metadata_keys={str(k): str(v) for k, v in data["metadata_keys"].items()},
            minimum_confidence=float(data["reading"]["minimum_confidence"]),
            minimum_ink_extent=float(data["reading"]["minimum_ink_extent"]), top=int(data["reading"]["top"]),
            raster_side=int(data["drawing"]["raster_side"]),
            stroke_divisor=int(data["drawing"]["stroke_divisor"]),
            minimum_stroke=float(data["drawing"]["minimum_stroke"]),
            screen_stroke_divisor=int(data["drawing"]["screen_stroke_divisor"]),
            core_ai=CoreAIContract(
                model_file=Path(ai["file"]), minimum_ios=int(ai["minimum_ios"]), function=str(ai["function"]),
                input_name=str(ai["input"]["name"]), input_type=str(ai["input"]["scalar_type"]),
                input_shape=tuple(ai["input"]["shape"]), output_name=str(ai["output"]["name"]),
                output_type=str(ai["output"]["scalar_type"]), output_shape=tuple(ai["output"]["shape"]),
                labels_key=str(ai["labels_key"]), version_key=str(ai["version_key"])),
            wording={str(k): str(v) for k, v in data["wording"].items()})
    except FileNotFoundError:
        raise KerasmlError(f"{path} is missing: the app folder must hold the contract its models are "
                           "checked against (ios_app/app-contract.json in a kerasml checkout)") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KerasmlError(f"{path} is not a valid app contract ({type(exc).__name__}: {exc}); "
                           "restore it from the kerasml repository") from None


@functools.cache
def bundled_contract() -> AppContract:
    """The contract of the app kerasml ships, inside the installed package: how the app reads."""
    return load_contract(Path(__file__).parent)
