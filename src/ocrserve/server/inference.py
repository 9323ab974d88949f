"""The inference API (TorchServe port 8080): ping, predictions, API description, and
``GET /ocrserve/models`` (ocrserve's own: the served models for clients that hold only the
inference key, such as the web page).

Routes parse and validate (the request's options too: `ocrserve.options`), then hand raw image
bytes to the engine. They never import torch or run a model: decoding and inference happen in
worker processes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ocrserve.documents.outputs import check_format, format_for_accept, render
from ocrserve.errors import (
    InternalServerError,
    InvalidInput,
    OcrServeError,
    PayloadTooLarge,
    error_from_answer,
)
from ocrserve.imaging import decode_base64, is_pdf, maybe_base64, probe
from ocrserve.options import DOCUMENT_OPTIONS, parse_options, task_schema
from ocrserve.server.engine import Engine
from ocrserve.server.jobs import Job
from ocrserve.server.openapi import inference_openapi
from ocrserve.server.responses import NO_CACHE_HEADERS, json_response
from ocrserve.settings import Settings

__all__ = [
    "MODELS_PATH",
    "check_response_size",
    "image_from_request",
    "infer_images",
    "inference_routes",
    "read_body",
]

#: ocrserve's route listing the served models on the inference port (TorchServe has none).
MODELS_PATH = "/ocrserve/models"

#: Multipart field names that carry the image (TorchServe handlers read "data" or "body").
IMAGE_FIELDS = ("data", "file", "body")


#: An over-size body is read and thrown away up to this many times ``max_request_size``, for at
#: most `DISCARD_SECONDS` and while data keeps coming (`DISCARD_IDLE_SECONDS` between chunks), so
#: that a client still uploading reads the 413 instead of a reset connection, and a client that
#: sends nothing is answered soon. nginx's lingering close does the same (lingering_time 30 s,
#: lingering_timeout 5 s). Past that the connection is closed.
DISCARD_FACTOR = 8
DISCARD_SECONDS = 30.0
DISCARD_IDLE_SECONDS = 5.0


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing more than ``limit`` bytes before keeping them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        message = f"Request body of {declared} bytes exceeds max_request_size ({limit} bytes)."
        if "100-continue" not in request.headers.get("expect", "").lower():
            await _discard(request, limit * DISCARD_FACTOR)
        raise PayloadTooLarge(message)  # (an expecting client has not sent its body)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            await _discard(request, limit * DISCARD_FACTOR - total)
            raise PayloadTooLarge(f"Request body exceeds max_request_size ({limit} bytes).")
        chunks.append(chunk)
    return b"".join(chunks)


async def _discard(request: Request, budget: int) -> None:
    """Read and drop the rest of the body: at most ``budget`` bytes, `DISCARD_SECONDS` in all
    and `DISCARD_IDLE_SECONDS` between two chunks."""
    deadline = asyncio.get_running_loop().time() + DISCARD_SECONDS
    stream = request.stream().__aiter__()
    try:
        while budget > 0:
            remaining = deadline - asyncio.get_running_loop().time()
            wait = max(0.0, min(remaining, DISCARD_IDLE_SECONDS))
            chunk = await asyncio.wait_for(stream.__anext__(), wait)
            budget -= len(chunk)
    except (StopAsyncIteration, asyncio.TimeoutError, ClientDisconnect):
        pass


#: A request's form of the image (or PDF) bytes, and the option fields sent beside them.
Payload = tuple[bytes, dict[str, Any]]


async def _multipart_image(request: Request, body: bytes) -> Payload:
    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(request.headers, stream(), max_files=8, max_fields=8)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidInput(f"Malformed multipart body: {exc.message}") from exc
    try:
        image: bytes | None = None
        for name in IMAGE_FIELDS:
            value = form.get(name)
            if isinstance(value, UploadFile):
                image = await value.read()
                break
            if isinstance(value, str) and value:
                image = decode_base64(value.encode())
                break
        if image is None:
            raise InvalidInput(
                "Multipart body has no image: send it in the field 'data' or 'file' "
                f"(fields received: {', '.join(form.keys()) or 'none'})."
            )
        options: dict[str, Any] = {}
        for key, value in form.multi_items():
            if key in IMAGE_FIELDS or not isinstance(value, str):
                continue  # other files are not options (TorchServe's handlers ignored them)
            if key in options:
                raise InvalidInput(f"Option '{key}' is given twice.")
            options[key] = value
        return image, options
    finally:
        await form.close()


def _json_image(body: bytes) -> Payload:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, deep nesting
        raise InvalidInput(f"Body declared as JSON is not valid JSON: {exc}") from None
    value = doc.get("data", doc.get("body")) if isinstance(doc, dict) else doc
    if not isinstance(value, str) or not value:
        raise InvalidInput('JSON body must be {"data": "<base64 image>"} or a base64 string.')
    options = {}
    if isinstance(doc, dict):
        options = {k: v for k, v in doc.items() if k not in IMAGE_FIELDS}
    return decode_base64(value.encode()), options


async def image_from_request(request: Request, limit: int) -> Payload:
    """The image (or PDF) bytes of a prediction request, in any of the accepted forms, and the
    options sent in the body (JSON fields beside ``data``, multipart fields beside the image)."""
    body = await read_body(request, limit)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        return await _multipart_image(request, body)
    if ctype == "application/json":
        return _json_image(body)
    if ctype == "application/pdf":
        if not is_pdf(body):
            raise InvalidInput("Body declared as application/pdf does not start with %PDF-.")
        return body, {}
    return maybe_base64(body), {}


def query_options(request: Request) -> dict[str, str]:
    """The options given as query parameters; one given twice is a 400."""
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in out:
            raise InvalidInput(f"Option '{key}' is given twice.")
        out[key] = value
    return out


def merged_options(query: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Query and body options together; one given in both places is a 400."""
    for key in body:
        if key in query:
            raise InvalidInput(f"Option '{key}' is given both in the query and in the body.")
    return {**query, **body}


async def infer_images(
    engine: Engine,
    request: Request,
    name: str,
    version: str | None,
    images: Sequence[bytes],
    options: dict[str, Any] | None = None,
    *,
    probed: bool = False,
) -> list[Any]:
    """Every image's result, in order: each is checked (`probe`; ``probed``: the caller did),
    then all go to `Engine.infer` at once (with the request's validated ``options``), so the
    engine batches them. The request's timings (for metrics) are the slowest image's."""
    for i, data in enumerate([] if probed else images):
        try:
            probe(data, engine.settings.max_image_pixels)
        except (InvalidInput, PayloadTooLarge) as exc:
            if len(images) > 1:
                exc.message = f"Image {i}: {exc.message}"
            raise
    jobs = await asyncio.gather(
        *(engine.infer(name, version, data, options) for data in images),
        return_exceptions=True,
    )
    for job in jobs:
        if isinstance(job, BaseException):
            raise job
    done = [job for job in jobs if not isinstance(job, BaseException)]
    request.state.queue_s = max(job.queue_s for job in done)
    request.state.handler_s = max(job.handler_s for job in done)
    return [job.future.result() for job in done]


#: What a client sends in ``Accept`` to have a document's pages streamed as they are read.
NDJSON = "application/x-ndjson"
#: Formats `probe` names for input that may hold several pages.
DOCUMENT_FORMATS = ("PDF", "TIFF")


def check_document_options(requested: dict[str, Any], image_format: str) -> None:
    """A 400 naming the document options a request sent with an image that is no document
    (``pages=5`` on a JPEG would otherwise be silently ignored)."""
    if image_format in DOCUMENT_FORMATS:
        return
    wrong = sorted(DOCUMENT_OPTIONS & set(requested))
    if wrong:
        names = ", ".join(f"'{name}'" for name in wrong)
        raise InvalidInput(
            f"Option {names} applies to PDF and TIFF input only; this body is a "
            f"{image_format} image."
        )


def wants_pages(request: Request) -> bool:
    """Whether the client asked for the answer as newline-delimited JSON (one page a line)."""
    return NDJSON in request.headers.get("accept", "").lower()


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone away (the body has been read: the next ASGI message is
    the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _first_or_gone(request: Request, job: Job, *also: asyncio.Future[Any]) -> None:
    """Wait for the job's answer or any of ``also``; a client that goes away first cancels the
    job (its worker stops reading the document's pages) and this raises
    `asyncio.CancelledError`."""
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        waits: set[asyncio.Future[Any]] = {job.future, gone, *also}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not job.future.done() and not any(f.done() for f in also):
        job.cancel()
        raise asyncio.CancelledError


def _whole(result: Any) -> Any:
    """A document's answer as a whole: a document whose every page failed is that failure
    (the first page's error), as a one-image request would be."""
    pages = result.get("pages") if isinstance(result, dict) else None
    if isinstance(pages, list) and pages and all("error" in p for p in pages):
        first = pages[0]
        error = error_from_answer(first["error"]["code"], first["error"])
        if len(pages) > 1:
            error.message = f"No page could be read; page {first['page']}: {error.message}"
        raise error
    return result


async def infer_document(
    engine: Engine,
    request: Request,
    name: str,
    version: str | None,
    data: bytes,
    options: dict[str, Any],
) -> Any:
    """A PDF's or multi-page TIFF's answer ``{"pages": [...]}``; the client going away stops it."""
    job = await engine.follow(name, version, data, options)
    await _first_or_gone(request, job)
    request.state.queue_s, request.state.handler_s = job.queue_s, job.handler_s
    return _whole(job.future.result())


def _line(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode() + b"\n"


async def stream_pages(
    engine: Engine,
    request: Request,
    name: str,
    version: str | None,
    data: bytes,
    options: dict[str, Any],
) -> Response:
    """The answer as newline-delimited JSON, one page a line as each is read (``X-Page-Count``
    says how many will come); an image's answer is one line. Errors found before the first page
    (a PDF that cannot be opened, too many pages) are ordinary error answers; one after it is a
    last line ``{"error": {...}}``. The client going away stops the work on the pages left."""
    job = await engine.follow(name, version, data, options)
    events = job.events
    if events is not None:
        first = asyncio.ensure_future(events.get())
        try:
            await _first_or_gone(request, job, first)
        finally:
            if not first.done():
                first.cancel()
        if first.done() and not first.cancelled():
            _, numbers = first.result()
            return StreamingResponse(
                _page_lines(job, events, request), media_type=NDJSON,
                headers={"x-page-count": str(len(numbers)), **NO_CACHE_HEADERS},
            )  # fmt: skip
    result = job.future.result()  # an image, or an engine that answers documents whole
    request.state.queue_s, request.state.handler_s = job.queue_s, job.handler_s
    pages = result.get("pages") if isinstance(result, dict) else None
    if isinstance(pages, list):
        body = b"".join(_line(page) for page in pages)
        headers = {"x-page-count": str(len(pages)), **NO_CACHE_HEADERS}
        return Response(body, media_type=NDJSON, headers=headers)
    return Response(_line(result), media_type=NDJSON, headers=NO_CACHE_HEADERS)


async def _page_lines(job: Job, events: asyncio.Queue[Any], request: Request) -> Any:
    """The streamed pages; a client that goes away (the response task is cancelled) cancels the
    job, so its worker stops before the next page."""
    try:
        while True:
            get = asyncio.ensure_future(events.get())
            either: set[asyncio.Future[Any]] = {get, job.future}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not get.done():
                get.cancel()
                while not events.empty():
                    kind, payload = events.get_nowait()
                    if kind == "page":
                        yield _line(payload)
                break
            kind, payload = get.result()
            if kind == "page":
                yield _line(payload)
        request.state.queue_s, request.state.handler_s = job.queue_s, job.handler_s
        if not job.future.cancelled() and job.future.exception() is not None:
            exc = job.future.exception()
            error = exc if isinstance(exc, OcrServeError) else InternalServerError(str(exc))
            yield _line({"error": error.to_json()})
    finally:
        if not job.future.done():
            job.cancel()


def answer_format(request: Request, task: str, options: dict[str, Any]) -> str:
    """The answer's format (`ocrserve.documents.outputs.FORMATS`): the ``format`` option, taken
    out of ``options`` (the model never sees it); else, for an end-to-end model, the one the
    ``Accept`` header prefers, unless it asks for pages as they are read (they stay JSON)."""
    fmt = options.pop("format", None)
    if fmt is None and task == "e2e" and not wants_pages(request):
        fmt = format_for_accept(request.headers.get("accept", ""))
    return str(fmt or "json")


async def formatted_response(
    result: Any, fmt: str, data: bytes, options: dict[str, Any], settings: Settings
) -> Response:
    """The answer written as ``fmt`` (`ocrserve.documents.outputs.render`, in a thread: a PDF's
    layer takes a while); ``X-Failed-Pages`` lists pages that failed (empty in the output)."""
    dpi = options.get("dpi", settings.pdf_dpi) if is_pdf(data) else None
    rendered = await asyncio.to_thread(render, fmt, result, data, dpi=dpi)
    check_response_size(len(rendered.body), settings.max_response_size)
    headers = {"x-request-id": str(uuid.uuid4()), **NO_CACHE_HEADERS}
    if rendered.failed_pages:
        headers["x-failed-pages"] = ",".join(str(n) for n in rendered.failed_pages)
    return Response(rendered.body, media_type=rendered.media_type, headers=headers)


def check_response_size(size: int, limit: int) -> None:
    """`InternalServerError` for an answer over ``max_response_size``."""
    if size > limit:
        raise InternalServerError(
            f"Response of {size} bytes exceeds max_response_size ({limit} bytes)."
        )


def inference_routes(engine: Engine) -> list[Route]:
    settings = engine.settings
    api = inference_openapi()

    async def ping(request: Request) -> Response:
        if engine.healthy():
            return json_response({"status": "Healthy"})
        return json_response({"status": "Unhealthy"}, 500)

    async def description(request: Request) -> Response:
        return json_response(api)

    async def served_models(request: Request) -> Response:
        models = []
        for name in sorted(engine.models):
            default = engine.get(name)
            models.append({
                "modelName": name,
                "modelVersion": default.spec.version,
                "task": default.spec.task,
                "versions": sorted(engine.models[name]),
                "options": task_schema(default.spec.task, default.spec.options),
            })  # fmt: skip
        return json_response({"models": models})

    async def predict(request: Request) -> Response:
        name = request.path_params["model_name"]
        version = request.path_params.get("model_version")
        # 404 before reading a body for a model that is not there; 400 for a bad query option
        spec = engine.get(name, version).spec
        request.state.model, request.state.version = name, version
        query = query_options(request)
        parse_options(spec.task, query, spec.options)
        data, fields = await image_from_request(request, settings.max_request_size)
        requested = merged_options(query, fields)
        options = parse_options(spec.task, requested, spec.options)
        fmt = answer_format(request, spec.task, options)
        info = probe(data, settings.max_image_pixels)
        check_document_options(requested, info.format)
        check_format(fmt, info.format, options)
        if wants_pages(request) and fmt == "json":
            return await stream_pages(engine, request, name, version, data, options)
        if info.format in DOCUMENT_FORMATS:
            result = await infer_document(engine, request, name, version, data, options)
        else:
            [result] = await infer_images(
                engine, request, name, version, [data], options, probed=True
            )
        if fmt != "json":
            return await formatted_response(result, fmt, data, options, settings)
        response = json_response(result, trailing_newline=False)
        check_response_size(len(response.body), settings.max_response_size)
        return response

    methods = ["POST", "PUT"]
    return [
        Route("/", description, methods=["OPTIONS"]),
        Route("/api-description", description, methods=["GET"]),
        Route("/ping", ping, methods=["GET"]),
        Route(MODELS_PATH, served_models, methods=["GET"]),
        Route("/predictions/{model_name}", predict, methods=methods),
        Route("/predictions/{model_name}/{model_version}", predict, methods=methods),
    ]
