"""The FastAPI app: API routes, the static page, a request-body limit and one-line errors."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from kerasml.errors import KerasmlError
from kerasml.web.classifier import TryModel
from kerasml.data.images import ImageTooLarge
from kerasml.web.routes import model_router, read_router
from kerasml.web.schemas import MAX_UPLOAD_BYTES
from kerasml.web.work import Busy, PhotoWork

STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "[::1]"]


def create_app(model: TryModel, allowed_hosts: list[str] | None = None, work: PhotoWork | None = None) -> FastAPI:
    """`allowed_hosts`: the Host headers served (all when None). A server on loopback answers only
    its own names, so a web page elsewhere cannot reach it by pointing a DNS name at 127.0.0.1.
    `work`: the photo workers and their queue (by default one worker per core, work.QUEUE waiting)."""
    # No /docs or /redoc: their pages load scripts from a CDN, and nothing here may use the internet.
    # max_body_size: larger requests are refused by their Content-Length or while they stream in,
    # so an oversized upload is never held whole in memory.
    app = FastAPI(title="kerasml try", docs_url=None, redoc_url=None, max_body_size=MAX_UPLOAD_BYTES)
    app.state.model = model
    app.state.work = work or PhotoWork()
    app.include_router(model_router)
    app.include_router(read_router)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    app.add_exception_handler(KerasmlError, _kerasml_error)
    app.add_exception_handler(413, _too_large)
    app.add_exception_handler(Busy, _busy)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # StaticFiles resolves every path inside STATIC and refuses anything outside it.
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app


async def _too_large(request: Request, exc: HTTPException) -> JSONResponse:
    """A body found too large while it streams in: say what the limit is and what to do. (One refused
    by its Content-Length before any route runs gets FastAPI's plain "Content Too Large"; the page
    checks a file's size before sending it.)"""
    return JSONResponse({"detail": f"the request is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; "
                                   "send a smaller image or fewer strokes"}, status_code=413)


async def _busy(request: Request, exc: Busy) -> JSONResponse:
    """Every photo worker and queue place is taken: come back later, rather than the server growing."""
    return JSONResponse({"detail": str(exc)}, status_code=503,
                        headers={"Retry-After": str(request.app.state.work.retry_after)})


async def _kerasml_error(request: Request, exc: KerasmlError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=413 if isinstance(exc, ImageTooLarge) else 400)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """The first problem as one line: 'strokes.0: List should have at least 1 item ...'."""
    problem = exc.errors()[0]
    where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
    return JSONResponse({"detail": f"{where}: {problem.get('msg', 'invalid')}" if where else problem.get("msg")},
                        status_code=422)
