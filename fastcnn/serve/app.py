"""The web app of ``fastcnn serve``: a static page (draw or drop a character) and a JSON
API that classifies it. FastAPI routes, the page in ``static/`` (no script from the internet)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import InputError
from .classifier import MAX_UPLOAD_BYTES, Classifier, UploadTooLarge, too_large_message

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool
except ImportError:  # pragma: no cover - the extra is part of the test install
    raise ImportError("fastcnn serve needs FastAPI and uvicorn: pip install 'fastcnn[serve]'") from None

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("fastcnn.serve")

DRAIN_BYTES = 256 * 1024 * 1024
"""How much of a too-large upload is read (and dropped) before answering."""


def model_classes(model, dataset: str | None = None) -> tuple[str | None, list[str]]:
    """(dataset name or None, class names) for ``model``'s outputs: the named ``dataset``'s,
    else those saved with the model (``model.data_info``), else its zoo recipe's dataset's,
    else the digits 0-9 (or the class indices when it scores other than 10 classes)."""
    from ..cli.evaluate import check_fits, model_dataset
    from ..datasets import get_spec

    info = getattr(model, "data_info", None) or {}
    if info.get("classes") and not dataset:
        return info.get("dataset"), [str(name) for name in info["classes"]]
    dataset = model_dataset(model, dataset)
    if dataset is not None:
        spec = get_spec(dataset)
        check_fits(model, spec.num_classes, dataset)
        return spec.name, list(spec.classes)
    count = model.output_shape[0]
    return None, [str(i) for i in range(count)]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request: Request) -> bytes:
    """The request body; UploadTooLarge past the limit. The rest of a large upload is read
    and dropped first (up to :data:`DRAIN_BYTES`): a client cut off mid-upload sees a reset
    connection instead of the message."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_UPLOAD_BYTES:
            chunks.append(chunk)
        elif size > DRAIN_BYTES:
            break
    if size > MAX_UPLOAD_BYTES:
        raise UploadTooLarge(too_large_message(size if size <= DRAIN_BYTES else None))
    return b"".join(chunks)


def create_app(model, dataset: str | None = None) -> FastAPI:
    """The app serving ``model`` (built, 28x28 grayscale inputs); ``dataset`` names the class
    names to show (default: see :func:`model_classes`)."""
    from ..backend import backend_name

    dataset, names = model_classes(model, dataset)
    classifier = Classifier(model, names)
    info = {"model": model.title, "dataset": dataset, "classes": names, "backend": backend_name(),
            "convolutions": [model.layers[i].name for i in classifier.convolutions],
            "max_upload_bytes": MAX_UPLOAD_BYTES}
    app = FastAPI(title=f"fastcnn: {model.title}", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.classifier = classifier

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/info")
    def model_info():
        return info

    @app.post("/api/classify")
    async def classify(request: Request):
        """The body is the image file itself (PNG, JPEG, ...), e.g. the canvas as a PNG."""
        try:
            data = await _read_body(request)
            return await run_in_threadpool(classifier.classify, data)
        except UploadTooLarge as exc:
            return _error(413, str(exc))
        except InputError as exc:
            return _error(400, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("fastcnn serve failed on %s", request.url.path)
        return _error(500, f"The server failed ({type(exc).__name__}); its console shows the details.")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
