"""What the iOS app shows for a drawing or photo, computed the way DigitKit computes it.

Every number and word is the app contract's (`bundled_contract`, the app-contract.json DigitKit's
`AppContract` decodes): strokes are rasterised for the model at the contract's `drawing` sizes
(DigitKit's `Sketch.rasterized`); "no digit" for an empty canvas, for ink spanning under
`minimum_ink_extent` of the canvas (a tap) and for a best guess under `minimum_confidence`;
`rank` orders by probability, ties to the smaller label (DigitKit's `Ranking.top`); each outcome's
headline is the contract's `wording`. `kerasml try` and `kerasml predict` read through here.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Sequence

import numpy as np

from kerasml.app.contract import bundled_contract
from kerasml.preprocess import normalize_digit, rasterize_sketch

CONTRACT = bundled_contract()
MINIMUM_CONFIDENCE = CONTRACT.minimum_confidence
MINIMUM_INK_EXTENT = CONTRACT.minimum_ink_extent
TOP = CONTRACT.top                                        # the app shows three guesses
LINE_WIDTH_FRACTION = 1 / CONTRACT.screen_stroke_divisor  # the stroke on screen, not the model's

EMPTY, TOO_SMALL, UNSURE, ANSWER = "empty", "too_small", "unsure", "answer"
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")   # what Swift's Int(String) accepts


@dataclasses.dataclass
class Reading:
    """DigitKit's `Reading`: `kind` is one of EMPTY, TOO_SMALL, UNSURE, ANSWER."""

    kind: str
    predictions: list[tuple[str, float]] = dataclasses.field(default_factory=list)

    def headline(self, noun: str = "digit", photo: bool = False) -> str:
        """DigitKit's headline for this outcome, in the contract's words; a model of other things
        than digits (the try page only) gets its own noun, and "Best guess" for an answer."""
        wording = CONTRACT.wording
        if self.kind == ANSWER:
            best = self.predictions[0][0]
            return wording["digit"].format(label=best) if noun == "digit" else f"Best guess: {best}"
        key = {EMPTY: "no_ink" if photo else "empty_drawing", TOO_SMALL: "too_small", UNSURE: "unsure"}[self.kind]
        return wording[key].replace("digit", noun)


def sketch_raster(strokes: Sequence[Sequence[Sequence[float]]], canvas_side: float) -> np.ndarray:
    """DigitKit's `Sketch.rasterized`: strokes in canvas units -> the contract's raster (280x280
    uint8), white ink on black, strokes as wide as the contract's `drawing` says."""
    return rasterize_sketch(strokes, canvas_side, CONTRACT.raster_side, CONTRACT.stroke_divisor,
                            CONTRACT.minimum_stroke)


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
