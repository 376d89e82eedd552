"""The page's API, grouped by concern: the model card, and readings of drawings and photos.

Each route only adapts HTTP to `TryModel` (kerasml's preparation, runtime and the app's policy).
"""

from __future__ import annotations

import functools

from fastapi import APIRouter, Depends, Request, Response

from kerasml.app import reading
from kerasml.web import photo
from kerasml.web.classifier import TryModel
from kerasml.web.schemas import (MAX_POINTS, MAX_POINTS_PER_STROKE, MAX_STROKES, MAX_UPLOAD_BYTES,
                                 ErrorResponse, Guess, Limits, Load, ModelCard, PhotoResponse, Policy,
                                 ReadingResponse, Step, StrokesRequest)
from kerasml.web.work import PhotoWork

ERRORS = {status: {"model": ErrorResponse} for status in (400, 413, 422, 503)}
CLIENT_LEFT = 499                # nginx's "client closed request": an answer nobody receives


# Dependencies and quick routes are `async`: on the event loop, not a thread each, so the card still
# answers at once while every thread is busy with drawings and photos.
async def tried_model(request: Request) -> TryModel:
    return request.app.state.model


async def photo_work(request: Request) -> PhotoWork:
    return request.app.state.work


model_router = APIRouter(prefix="/api", tags=["model"])
read_router = APIRouter(prefix="/api/read", tags=["reading"], responses=ERRORS)


@model_router.get("/model", response_model=ModelCard)
async def model_card(model: TryModel = Depends(tried_model), work: PhotoWork = Depends(photo_work)) -> ModelCard:
    """What the model is (its metadata), how the page should offer it, and the limits of the API."""
    policy = Policy(minimum_confidence=reading.MINIMUM_CONFIDENCE, minimum_ink_extent=reading.MINIMUM_INK_EXTENT,
                    line_width_fraction=reading.LINE_WIDTH_FRACTION, top=reading.TOP)
    limits = Limits(max_strokes=MAX_STROKES, max_points_per_stroke=MAX_POINTS_PER_STROKE,
                    max_points=MAX_POINTS, max_upload_bytes=MAX_UPLOAD_BYTES, max_pixels=photo.MAX_PIXELS,
                    photo_workers=work.workers, photo_queue=work.queue)
    return ModelCard(**model.card(), policy=policy, limits=limits)


@model_router.get("/load", response_model=Load)
async def load(work: PhotoWork = Depends(photo_work)) -> Load:
    """How busy the photo workers are: photos arriving, waiting for a worker, being worked on."""
    return Load(workers=work.workers, queue=work.queue, **work.counts())


@read_router.post("/strokes", response_model=ReadingResponse)
def read_strokes(body: StrokesRequest, model: TryModel = Depends(tried_model)) -> ReadingResponse:
    """Rasterise and prepare the strokes as the app does, then read them with the model."""
    result, model_input = model.read_strokes(body.strokes, body.canvas_side)
    return _reading_response(result, model, model_input, from_photo=False)


@read_router.post("/photo", response_model=PhotoResponse,
                  openapi_extra={"requestBody": {"content": {"image/*": {}}, "required": True}})
async def read_photo(request: Request, model: TryModel = Depends(tried_model),
                     work: PhotoWork = Depends(photo_work)) -> PhotoResponse | Response:
    """The request body is the image file itself (PNG, JPEG, ...); it is decoded in memory only,
    by one of the photo workers (503 with Retry-After when they and their queue are full)."""
    # The body is at most MAX_UPLOAD_BYTES: FastAPI's max_body_size stops more as it streams in.
    answer = await work.run(request, functools.partial(_photo_response, model))
    return Response(status_code=CLIENT_LEFT) if answer is None else answer


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
