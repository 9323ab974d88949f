"""The management API (TorchServe port 8081): list, describe, register, scale, set-default,
unregister. Register and unregister answer 405 unless ``enable_model_api`` is on."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ocrserve.archives.spec import ModelSpec
from ocrserve.archives.store import ModelStore
from ocrserve.errors import (
    ArchiveError,
    BadRequest,
    DownloadArchiveError,
    InternalServerError,
    MethodNotAllowed,
    ModelNotFound,
    OcrServeError,
)
from ocrserve.server.engine import Engine
from ocrserve.server.openapi import management_openapi
from ocrserve.server.responses import json_response
from ocrserve.settings import ModelConfig

__all__ = ["management_routes"]

MAX_DOWNLOAD_BYTES = 2 * 1024**3


Params = dict[str, str]


async def _params(request: Request) -> Params:
    """Query parameters, or a JSON object body as TorchServe also accepts (torchserve-client)."""
    params = dict(request.query_params)
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > 65536:
                raise BadRequest("JSON body over 64 KiB")
        if body.strip():
            try:
                doc = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BadRequest(f"Invalid JSON body: {exc}") from None
            if not isinstance(doc, dict):
                raise BadRequest("JSON body must be an object of parameters")
            for key, value in doc.items():
                if isinstance(value, bool):
                    params[key] = "true" if value else "false"
                elif isinstance(value, (str, int, float)):
                    params[key] = str(value)
    return params


def _int(params: Params, name: str, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Parameter {name} must be an integer, got {raw!r}.") from None
    if value < 0:
        raise BadRequest(f"Parameter {name} must not be negative, got {value}.")
    return value


def _bool(params: Params, name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise BadRequest(f"Parameter {name} must be true or false, got {raw!r}.")


def _status(message: str, code: int = 200) -> Response:
    return json_response({"status": message}, code)


def _normalized_url(url: str) -> str:
    """The URL with its path percent-decoded until stable; refuses what could escape an
    allow-list: other schemes, user info, fragments, ``.``/``..`` segments, encoded separators."""
    parts = urlsplit(url)
    # Matched as written (urlsplit lowercases the scheme; allowed_urls are regexes over the text).
    if not url.startswith(("http://", "https://")) or not parts.hostname:
        raise ModelNotFound(f"Given URL {url} does not match any allowed URL(s)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ModelNotFound(
            f"Given URL {url} does not match any allowed URL(s): user information is not allowed"
        )
    if parts.fragment:
        raise ModelNotFound(
            f"Given URL {url} does not match any allowed URL(s): fragments are not allowed"
        )
    path, previous = parts.path, None
    while path != previous:
        previous, path = path, unquote(path)
    if "\\" in path or any(seg in (".", "..") for seg in path.split("/")) or "\x00" in path:
        raise ModelNotFound(f"Relative path is not allowed in url: {url}")
    if re.search(r"%(2f|5c)", parts.path, re.IGNORECASE):
        raise ModelNotFound(f"Encoded separators are not allowed in url: {url}")
    return urlunsplit((parts.scheme, parts.netloc, quote(path, safe="/:@!$&'()*+,;=-._~"),
                       parts.query, ""))  # fmt: skip


class Registrar:
    """Turns a registration ``url`` into a prepared `ModelSpec` (download, checks, extraction)."""

    def __init__(self, store: ModelStore, allowed_urls: tuple[str, ...]) -> None:
        self.store = store
        self.allowed = [re.compile(p) for p in allowed_urls]

    async def prepare(self, url: str, name: str | None) -> ModelSpec:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
            return await self._remote(url, name)
        if Path(url).is_absolute():
            root = self.store.root
            if root is None or root.resolve() not in Path(url).resolve().parents:
                raise ModelNotFound(f"Model not found at: {url} (only the model store is read)")
        elif ".." in Path(url).parts or "\\" in url:
            raise ModelNotFound(f"Relative path is not allowed in url: {url}")
        return await asyncio.to_thread(self._local, url, name)

    def _local(self, url: str, name: str | None) -> ModelSpec:
        try:
            self.store.locate(url)
        except ArchiveError as exc:
            raise ModelNotFound(exc.message) from None
        try:
            return self.store.prepare(url, name)
        except ArchiveError as exc:
            raise BadRequest(exc.message) from None

    async def _remote(self, url: str, name: str | None) -> ModelSpec:
        if not self.allowed:
            raise ModelNotFound(f"Given URL {url} does not match any allowed URL(s)")
        url = _normalized_url(url)
        if not any(p.fullmatch(url) for p in self.allowed):
            raise ModelNotFound(f"Given URL {url} does not match any allowed URL(s)")
        self.store.work.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=self.store.work, prefix="download-"))
        try:  # the download is deleted once extracted, or refused
            target = folder / "archive.mar"
            await _download(url, target)
            return await asyncio.to_thread(self.store.prepare_file, target, name, url)
        except ArchiveError as exc:
            raise BadRequest(exc.message) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)


async def _download(url: str, target: Path) -> None:
    """Stream ``url`` into ``target``, at most `MAX_DOWNLOAD_BYTES`."""
    try:
        size = 0
        async with httpx.AsyncClient(timeout=60, follow_redirects=False) as client:
            async with client.stream("GET", url) as resp:
                resp.raise_for_status()
                with open(target, "wb") as out:
                    async for chunk in resp.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_DOWNLOAD_BYTES:
                            raise DownloadArchiveError(
                                f"Archive at {url} exceeds {MAX_DOWNLOAD_BYTES} bytes"
                            )
                        out.write(chunk)
    except (httpx.HTTPError, OSError):
        raise DownloadArchiveError(f"Failed to download archive from: {url}") from None


def management_routes(
    engine: Engine, store: ModelStore, on_change: Callable[[], None] | None = None
) -> list[Route]:
    settings = engine.settings
    registrar = Registrar(store, settings.allowed_urls)
    api = management_openapi()

    def require_model_api() -> None:
        if not settings.enable_model_api:
            raise MethodNotAllowed(
                "Model API is disabled: start with --enable-model-api (enable_model_api=true) "
                "to register or unregister models."
            )

    async def description(request: Request) -> Response:
        return json_response(api)

    async def list_models(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "100"))
        except ValueError:
            limit = 100  # TorchServe ignores a bad limit
        limit = limit if 0 < limit <= 1000 else 100
        token = request.query_params.get("next_page_token") or request.query_params.get(
            "nextPageToken", "0"
        )
        start = int(token) if token.isdigit() else 0
        names = sorted(engine.models)
        page = [
            {"modelName": n, "modelUrl": engine.get(n).spec.url}
            for n in names[start : start + limit]
        ]
        body: dict[str, Any] = {}
        if start + limit < len(names):
            body["nextPageToken"] = str(start + limit)
        body["models"] = page
        return json_response(body)

    async def describe(request: Request) -> Response:
        name = request.path_params["model_name"]
        version = request.path_params.get("model_version")
        default = engine.get(name).spec.version
        runtimes = engine.versions(name) if version == "all" else [engine.get(name, version)]
        return json_response([rt.describe(default) for rt in runtimes])

    async def register(request: Request) -> Response:
        require_model_api()
        params = await _params(request)
        url = params.get("url")
        if not url:
            raise BadRequest("Parameter url is required.")
        workers = _int(params, "initial_workers", 0) or 0
        synchronous = _bool(params, "synchronous", False)
        config = ModelConfig.from_settings(
            settings,
            min_workers=workers,
            max_workers=workers,
            batch_size=_int(params, "batch_size"),
            max_batch_delay=_int(params, "max_batch_delay"),
            response_timeout=_int(params, "response_timeout"),
            startup_timeout=_int(params, "startup_timeout"),
        )
        if config.batch_size < 1:
            raise BadRequest("Parameter batch_size must be at least 1.")
        if workers > settings.max_workers_per_model:
            raise BadRequest(
                f"At most {settings.max_workers_per_model} workers per model "
                "(max_workers_per_model)."
            )
        spec = await registrar.prepare(url, params.get("model_name") or None)
        try:
            runtime = engine.register(spec, config, start=True)
        except OcrServeError:
            store.discard(spec)
            raise
        if on_change:
            on_change()
        label = f'Model "{spec.name}" Version: {spec.version}'
        if workers == 0:
            return _status(
                f"{label} registered with 0 initial workers. "
                "Use scale workers API to add workers for the model."
            )
        if not synchronous:
            return _status("Processing worker updates...", 202)
        if not await runtime.wait_ready(workers, config.startup_timeout):
            reason = runtime.load_error or "workers did not start in time"
            store.discard((await engine.unregister(spec.name, spec.version)).spec)
            raise InternalServerError(f"Failed to start workers for model {spec.name}: {reason}")
        return _status(f"{label} registered with {workers} initial workers")

    async def scale(request: Request) -> Response:
        name = request.path_params["model_name"]
        version = request.path_params.get("model_version")
        runtime = engine.get(name, version)
        params = dict(request.query_params)
        min_workers = _int(params, "min_worker", 1)
        max_workers = _int(params, "max_worker", min_workers)
        assert min_workers is not None and max_workers is not None
        synchronous = _bool(params, "synchronous", False)
        engine.scale(name, version, min_workers, max_workers)
        if not synchronous:
            return _status("Processing worker updates...", 202)
        if not await runtime.wait_ready(min_workers, runtime.config.startup_timeout):
            raise InternalServerError(
                f"Failed to start workers for model {name}: {runtime.load_error or 'timeout'}"
            )
        suffix = f", version: {version}" if version else ""
        return _status(f"Workers scaled to {min_workers} for model: {name}{suffix}")

    async def set_default(request: Request) -> Response:
        name = request.path_params["model_name"]
        version = request.path_params["model_version"]
        engine.set_default(name, version)
        return _status(f'Default version successfully updated for model "{name}" to "{version}"')

    async def unregister(request: Request) -> Response:
        require_model_api()
        name = request.path_params["model_name"]
        runtime = await engine.unregister(name, request.path_params.get("model_version"))
        store.discard(runtime.spec)
        if on_change:
            on_change()
        return _status(f'Model "{name}" unregistered')

    async def model_or_version(request: Request) -> Response:
        handlers = {"GET": describe, "PUT": scale, "DELETE": unregister}
        return await handlers[request.method](request)

    async def models(request: Request) -> Response:
        return await (list_models if request.method == "GET" else register)(request)

    return [
        Route("/", description, methods=["OPTIONS"]),
        Route("/api-description", description, methods=["GET"]),
        Route("/models", models, methods=["GET", "POST"]),
        Route("/models/{model_name}", model_or_version, methods=["GET", "PUT", "DELETE"]),
        Route("/models/{model_name}/{model_version}/set-default", set_default, methods=["PUT"]),
        Route(
            "/models/{model_name}/{model_version}",
            model_or_version,
            methods=["GET", "PUT", "DELETE"],
        ),
    ]
