"""Request and response shapes of the page's API (pydantic), with the limits on what a client sends."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, Field, model_validator

MAX_STROKES = 200            # far more than any digit; Undo and Clear keep a drawing small
MAX_POINTS_PER_STROKE = 5_000
MAX_POINTS = 20_000          # in all strokes: rasterising stays well under a second
MAX_UPLOAD_BYTES = 10 * 1024 * 1024   # photos and request bodies; larger ones get HTTP 413

Coordinate = Annotated[float, Field(allow_inf_nan=False, ge=-1e5, le=1e5)]
Point = tuple[Coordinate, Coordinate]
Stroke = Annotated[list[Point], Field(min_length=1, max_length=MAX_POINTS_PER_STROKE)]


class StrokesRequest(BaseModel):
    """A drawing: strokes of (x, y) points in canvas units, y down, on a square canvas of `canvas_side`."""

    canvas_side: float = Field(gt=0, le=1e5, allow_inf_nan=False)
    strokes: list[Stroke] = Field(max_length=MAX_STROKES)

    @model_validator(mode="after")
    def _not_too_many_points(self) -> "StrokesRequest":
        points = sum(map(len, self.strokes))
        if points > MAX_POINTS:
            raise ValueError(f"the drawing has {points:,} points; the limit is {MAX_POINTS:,}, so clear it "
                             "and draw again")
        return self


class Guess(BaseModel):
    label: str
    probability: float


class ReadingResponse(BaseModel):
    """What the app would show: `kind` is empty, too_small, unsure or answer."""

    kind: Literal["empty", "too_small", "unsure", "answer"]
    headline: str
    predictions: list[Guess]
    model_input: Optional[str] = Field(None, description="PNG data URL of the image the model was given")


class Step(BaseModel):
    name: str
    image: str = Field(description="PNG data URL")


class PhotoResponse(ReadingResponse):
    steps: list[Step]
    notes: list[str]


class Policy(BaseModel):
    minimum_confidence: float
    minimum_ink_extent: float
    line_width_fraction: float
    top: int


class Limits(BaseModel):
    max_strokes: int
    max_points_per_stroke: int
    max_points: int
    max_upload_bytes: int
    max_pixels: int
    photo_workers: int = Field(description="photos decoded and read at once")
    photo_queue: int = Field(description="more photos that may arrive or wait; the next gets HTTP 503")


class Load(BaseModel):
    """How full the photo workers and their queue are."""

    workers: int
    queue: int
    arriving: int = Field(description="photo requests whose body is still arriving")
    waiting: int = Field(description="photos waiting for a worker")
    working: int = Field(description="photos being decoded, prepared and read")


class ModelCard(BaseModel):
    name: str
    description: str
    author: str
    license: str
    version: str
    labels: list[str]
    input: str
    test_accuracy: Optional[float]
    dataset: Optional[str]
    architecture: Optional[str]
    mode: Literal["drawing", "photo"]
    noun: str
    framework: Literal["Core ML", "Core AI"]     # the model's format, as the app would run it
    runtime: str                                  # what computes it here: kerasml's runtime or Apple's
    policy: Policy
    limits: Limits


class ErrorResponse(BaseModel):
    detail: str
