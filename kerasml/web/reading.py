"""What the iOS app shows for a drawing, computed the way DigitKit computes it.

The policy is the app's (`ios_app/app-contract.json`, which DigitKit's `AppContract` decodes):
strokes are rasterised for the model by `kerasml.preprocess.rasterize_sketch` (DigitKit's
`Sketch.rasterized`, with the contract's `drawing` values as its defaults); "no digit" for an empty
canvas, for ink spanning under a tenth of the canvas (a tap) and for a best guess under 60%;
`Ranking.top` orders by probability, ties to the smaller label. kerasml installed from a wheel has
no ios_app/, so the numbers are written here once and `tests/test_try_api.py` checks them against
the contract.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Sequence

import numpy as np

from kerasml.preprocess import normalize_digit, rasterize_sketch

LINE_WIDTH_FRACTION = 1 / 15    # DigitKit Sketch.lineWidthFraction: the stroke on screen, not the model's
MINIMUM_CONFIDENCE = 0.6        # app-contract.json reading.minimum_confidence
MINIMUM_INK_EXTENT = 0.1        # app-contract.json reading.minimum_ink_extent
TOP = 3                         # app-contract.json reading.top: the app shows three guesses

EMPTY, TOO_SMALL, UNSURE, ANSWER = "empty", "too_small", "unsure", "answer"
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")   # what Swift's Int(String) accepts


@dataclasses.dataclass
class Reading:
    """DigitKit's `Reading`: `kind` is one of EMPTY, TOO_SMALL, UNSURE, ANSWER."""

    kind: str
    predictions: list[tuple[str, float]] = dataclasses.field(default_factory=list)

    def headline(self, noun: str = "digit", photo: bool = False) -> str:
        """DigitKit's `LabelFormat.headline`; models of other things get their own noun."""
        if self.kind == EMPTY:
            return f"No {noun} found in the photo" if photo else f"Draw a {noun}"
        if self.kind == TOO_SMALL:
            return f"No {noun}: draw it larger"
        if self.kind == UNSURE:
            return f"No {noun} recognised"
        best = self.predictions[0][0]
        return f"It's a {best}" if noun == "digit" else f"Best guess: {best}"


def sketch_raster(strokes: Sequence[Sequence[Sequence[float]]], canvas_side: float) -> np.ndarray:
    """DigitKit's `Sketch.rasterized`: strokes in canvas units -> 280x280 uint8, white ink on black."""
    return rasterize_sketch(strokes, canvas_side)


def precheck(raster: np.ndarray) -> Reading | None:
    """`ConfidencePolicy.precheck`: EMPTY, TOO_SMALL, or None when the model should be asked."""
    rows = np.flatnonzero(raster.max(axis=1) > 0)
    cols = np.flatnonzero(raster.max(axis=0) > 0)
    if rows.size == 0:
        return Reading(EMPTY)
    extent = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) / max(raster.shape)
    return Reading(TOO_SMALL) if extent < MINIMUM_INK_EXTENT else None


def prepare_sketch(strokes, canvas_side: float) -> tuple[Reading | None, np.ndarray | None]:
    """(early reading, None) for an empty canvas or a speck, else (None, the 28x28 model input)."""
    raster = sketch_raster(strokes, canvas_side)
    early = precheck(raster)
    return (early, None) if early else (None, normalize_digit(raster))


def rank(probabilities: Sequence[float], labels: Sequence[str], count: int = TOP) -> list[tuple[str, float]]:
    """`Ranking.top`: most probable first, ties to the smaller label (numerically for numbers),
    NaN last; probabilities clamped to 0...1."""
    def order(item):
        label, p = item
        p = -1.0 if math.isnan(p) else p
        numeric = _INTEGER.match(label) is not None
        return (-p, 0 if numeric else 1, int(label) if numeric else 0, label)

    ranked = sorted(zip(labels, map(float, probabilities)), key=order)[:max(count, 0)]
    return [(label, 0.0 if math.isnan(p) else min(max(p, 0.0), 1.0)) for label, p in ranked]


def judge(ranked: list[tuple[str, float]]) -> Reading:
    """`ConfidencePolicy.reading`: an answer only when the best guess reaches the threshold."""
    if ranked and ranked[0][1] >= MINIMUM_CONFIDENCE:
        return Reading(ANSWER, ranked)
    return Reading(UNSURE, ranked)
