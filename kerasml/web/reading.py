"""What the iOS app shows for a drawing, computed the way DigitKit computes it.

The policy is DigitKit's (`ios_app/Sources/DigitKit`): `Sketch` rasterises the strokes at 280x280
with a line 1/15 of the canvas side wide; `ConfidencePolicy.standard` says "no digit" for an empty
canvas, for ink spanning under a tenth of the canvas (a tap) and for a best guess under 60%;
`Ranking.top` orders by probability, ties to the smaller label. Python had no copy of this policy,
so it is written here once, as data, and `tests/test_try_api.py` reads the Swift sources to prove
both sides hold the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Sequence

import numpy as np

from kerasml.preprocess import normalize_digit, rasterize_strokes

RASTER_SIDE = 280               # DigitKit Sketch.rasterSide: strokes are rasterised at 280x280
LINE_WIDTH_FRACTION = 1 / 15    # DigitKit Sketch.lineWidthFraction: MNIST-like 2-3 px strokes in 28x28
MINIMUM_CONFIDENCE = 0.6        # DigitKit ConfidencePolicy.standard.minimumConfidence
MINIMUM_INK_EXTENT = 0.1        # DigitKit ConfidencePolicy.standard.minimumInkExtent
TOP = 3                         # the app shows three guesses

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
    side = float(RASTER_SIDE)
    scale = side / canvas_side if canvas_side > 0 else 1.0
    scaled = [[(float(x) * scale, float(y) * scale) for x, y in stroke] for stroke in strokes]
    return rasterize_strokes(scaled, RASTER_SIDE, side * LINE_WIDTH_FRACTION)


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
