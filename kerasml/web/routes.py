"""The page's API, grouped by concern: the model card, and readings of drawings and photos.

Each route only adapts HTTP to `TryModel` (kerasml's preparation, runtime and the app's policy).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from kerasml.web import photo, reading
from kerasml.web.classifier import TryModel
from kerasml.web.schemas import (MAX_POINTS, MAX_POINTS_PER_STROKE, MAX_STROKES, MAX_UPLOAD_BYTES,
                                 ErrorResponse, Guess, Limits, ModelCard, PhotoResponse, Policy,
                                 ReadingResponse, Step, StrokesRequest)

ERRORS = {status: {"model": ErrorResponse} for status in (400, 413, 422)}


def tried_model(request: Request) -> TryModel:
    return request.app.state.model


model_router = APIRouter(prefix="/api", tags=["model"])
read_router = APIRouter(prefix="/api/read", tags=["reading"], responses=ERRORS)


@model_router.get("/model", response_model=ModelCard)
def model_card(model: TryModel = Depends(tried_model)) -> ModelCard:
    """What the model is (its metadata), how the page should offer it, and the limits of the API."""
    policy = Policy(minimum_confidence=reading.MINIMUM_CONFIDENCE, minimum_ink_extent=reading.MINIMUM_INK_EXTENT,
                    line_width_fraction=reading.LINE_WIDTH_FRACTION, top=reading.TOP)
    limits = Limits(max_strokes=MAX_STROKES, max_points_per_stroke=MAX_POINTS_PER_STROKE,
                    max_points=MAX_POINTS, max_upload_bytes=MAX_UPLOAD_BYTES)
    return ModelCard(**model.card(), policy=policy, limits=limits)


@read_router.post("/strokes", response_model=ReadingResponse)
def read_strokes(body: StrokesRequest, model: TryModel = Depends(tried_model)) -> ReadingResponse:
    """Rasterise and prepare the strokes as the app does, then read them with the model."""
    result, model_input = model.read_strokes(body.strokes, body.canvas_side)
    return _reading_response(result, model, model_input, from_photo=False)


@read_router.post("/photo", response_model=PhotoResponse,
                  openapi_extra={"requestBody": {"content": {"image/*": {}}, "required": True}})
async def read_photo(request: Request, model: TryModel = Depends(tried_model)) -> PhotoResponse:
    """The request body is the image file itself (PNG, JPEG, ...); it is decoded in memory only."""
    data = await request.body()          # at most MAX_UPLOAD_BYTES: FastAPI's max_body_size stops more
    return await run_in_threadpool(_photo_response, model, data)     # decoding is slow work: off the loop


def _photo_response(model: TryModel, data: bytes) -> PhotoResponse:
    result, prepared = model.read_photo(data)
    response = _reading_response(result, model, prepared.image, from_photo=True)
    steps = [Step(name=name, image=photo.png_data_url(pixels)) for name, pixels in prepared.steps]
    return PhotoResponse(**response.model_dump(), steps=steps, notes=prepared.notes)


def _reading_response(result: reading.Reading, model: TryModel, model_input, from_photo: bool) -> ReadingResponse:
    return ReadingResponse(
        kind=result.kind, headline=result.headline(model.noun, photo=from_photo),
        predictions=[Guess(label=label, probability=p) for label, p in result.predictions],
        model_input=None if model_input is None else photo.png_data_url(model_input, max_side=None))
