"""Wiring: one Starlette app per API surface, the shared engine, and a graceful run loop.

`serve` runs every HTTP server in one event loop. SIGTERM or SIGINT stops accepting
connections, lets in-flight requests finish (uvicorn's graceful shutdown), then stops the
workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Generator, Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocrserve.archives.spec import ModelSpec
from ocrserve.archives.store import LoadFailure, ModelStore
from ocrserve.errors import (
    ConfigError,
    InternalServerError,
    MethodNotAllowed,
    OcrServeError,
    ResourceNotFound,
)
from ocrserve.server.auth import (
    INFERENCE_EXEMPT_PATHS,
    MANAGEMENT_EXEMPT_PATHS,
    TokenAuthMiddleware,
    TokenStore,
    token_routes,
)
from ocrserve.server.engine import Engine
from ocrserve.server.inference import inference_routes
from ocrserve.server.kserve_v1 import kserve_v1_routes
from ocrserve.server.kserve_v2 import kserve_v2_routes
from ocrserve.server.management import management_routes
from ocrserve.server.metrics import Metrics, metrics_routes
from ocrserve.server.responses import error_response_for
from ocrserve.server.webpage import WEB_PAGE_PATHS, web_page_routes
from ocrserve.settings import ModelConfig, Settings, parse_address

__all__ = [
    "apply_default_versions",
    "build_app",
    "inference_app",
    "model_config",
    "new_engine",
    "serve",
]

log = logging.getLogger("ocrserve")
access_log = logging.getLogger("ocrserve.access")


async def _ocrserve_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OcrServeError)
    return error_response_for(request.url.path, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 404:
        return error_response_for(path, ResourceNotFound())
    if exc.status_code == 405:
        return error_response_for(path, MethodNotAllowed())
    err = OcrServeError(str(exc.detail))
    err.status = exc.status_code
    err.type = "BadRequestException" if exc.status_code < 500 else "InternalServerException"
    return error_response_for(path, err)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response_for(request.url.path, InternalServerError(f"{type(exc).__name__}: {exc}"))


def build_app(routes: Sequence[Route]) -> Starlette:
    """A Starlette app whose every error is TorchServe's error JSON."""
    app = Starlette(
        routes=list(routes),
        exception_handlers={
            OcrServeError: _ocrserve_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    # TorchServe answers a trailing slash with its JSON 404, not an empty redirect.
    app.router.redirect_slashes = False
    return app


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `serve` (several servers, one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class _OncePerProcess(logging.Filter):
    """Drops the lines uvicorn logs once per server (`serve` runs three in one process and
    says each once, naming the three APIs)."""

    LINES = frozenset(
        {"Started server process [%d]", "Shutting down", "Finished server process [%d]"}
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.LINES


def _quiet_uvicorn() -> None:
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _OncePerProcess) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_OncePerProcess())


def _bind(key: str, address: str) -> socket.socket:
    host, port = parse_address(key, address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted connections only then, and
    # without it keep-alive responses stall ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"{key}={address}: cannot listen there ({exc.strerror})") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class RequestLog:
    """Pure ASGI middleware: one access-log line and the request metrics per response.

    Routes leave ``model``, ``version``, ``queue_s`` and ``handler_s`` in the request state
    when a prediction reached a model.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics | None, surface: str) -> None:
        self.app, self.metrics, self.surface = app, metrics, surface

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            latency = time.perf_counter() - started
            state = scope.get("state", {})
            client = scope.get("client") or ("-", 0)
            access_log.info(
                '%s %s "%s %s" %d %.1f ms', self.surface, client[0], scope["method"],
                scope["path"], status, latency * 1000,
            )  # fmt: skip
            if self.metrics is not None:
                handler = state.get("handler_s")
                self.metrics.record_request(
                    state.get("model"), state.get("version"), status, latency * 1e6,
                    state.get("queue_s", 0.0) * 1e6, None if handler is None else handler * 1e6,
                )  # fmt: skip


def _wrap(app: Starlette, settings: Settings, metrics: Metrics | None, surface: str,
          tokens: TokenStore | None, api: str | None) -> ASGIApp:  # fmt: skip
    wrapped: ASGIApp = app
    if tokens is not None and api == "inference":
        exempt = INFERENCE_EXEMPT_PATHS + (WEB_PAGE_PATHS if settings.enable_web_page else ())
        wrapped = TokenAuthMiddleware(wrapped, tokens, "inference", exempt)
    elif tokens is not None and api == "management":
        wrapped = TokenAuthMiddleware(wrapped, tokens, "management", MANAGEMENT_EXEMPT_PATHS)
    if settings.cors_allowed_origin:
        wrapped = CORSMiddleware(
            wrapped,
            allow_origins=[o.strip() for o in settings.cors_allowed_origin.split(",")],
            allow_methods=[m.strip() for m in settings.cors_allowed_methods.split(",") if m.strip()]
            or ["GET"],
            allow_headers=[
                h.strip() for h in settings.cors_allowed_headers.split(",") if h.strip()
            ],
        )
    return RequestLog(wrapped, metrics, surface)


def inference_app(
    engine: Engine, settings: Settings, metrics: Metrics | None, tokens: TokenStore | None
) -> ASGIApp:
    """The inference surface (port 8080): TorchServe's routes, KServe v1 and v2, the web page;
    the server's, and the Ray Serve ingress's of a RayService (`ocrserve.server.ray_app`)."""
    inference = [*inference_routes(engine), *kserve_v2_routes(engine), *kserve_v1_routes(engine)]
    if settings.enable_web_page:
        inference += web_page_routes()
    return _wrap(build_app(inference), settings, metrics, "inference", tokens, "inference")


async def serve(
    settings: Settings,
    store: ModelStore,
    specs: Sequence[ModelSpec],
    failures: Sequence[LoadFailure] = (),
) -> None:
    """Bind the ports, start the workers, serve until SIGTERM/SIGINT, then shut down cleanly."""
    surfaces = [
        ("inference_address", settings.inference_address),
        ("management_address", settings.management_address),
        ("metrics_address", settings.metrics_address),
    ]
    sockets = [_bind(key, addr) for key, addr in surfaces]  # fail fast when a port is taken
    metrics = Metrics()
    engine = new_engine(settings, metrics)
    tokens = None
    if not settings.disable_token_authorization:
        tokens = TokenStore.for_server(settings)
        log.info("token authorization is on: keys in %s", tokens.path)
    metric_routes = metrics_routes(metrics) if settings.metrics_mode == "prometheus" else [
        Route("/metrics", _empty_metrics, methods=["GET"])
    ]  # fmt: skip
    management = management_routes(engine, store)
    if tokens is not None:
        management = [*token_routes(tokens), *management]
    apps = [
        inference_app(engine, settings, metrics, tokens),
        _wrap(build_app(management), settings, metrics, "management", tokens, "management"),
        _wrap(build_app(metric_routes), settings, None, "metrics", None, None),
    ]  # fmt: skip
    servers = [
        _Server(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=settings.default_response_timeout,
                lifespan="off",
            )
        )
        for app in apps
    ]
    loop = asyncio.get_running_loop()

    def stop() -> None:
        log.info("stopping: finishing in-flight requests")
        engine.fail_unservable()
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    configs = {(s.name, s.version): model_config(settings, s) for s in specs}
    await engine.start(specs, failures, configs)
    apply_default_versions(engine, settings)
    for key, addr in surfaces:
        host, _ = parse_address(key, addr)
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning(
                "%s listens on %s, beyond this machine: keep token authorization on and put "
                "TLS in front (ocrserve speaks plain HTTP)", key, host,
            )  # fmt: skip
    _quiet_uvicorn()
    log.info(
        "Started server process [%d]: inference API %s, management API %s, metrics API %s",
        os.getpid(), *(addr for _, addr in surfaces),
    )  # fmt: skip
    try:
        await asyncio.gather(*(s.serve(sockets=[sock]) for s, sock in zip(servers, sockets)))
    finally:
        await engine.shutdown()
        for sock in sockets:
            sock.close()
        if tokens is not None:
            tokens.delete_file()
        log.info("stopped")


def apply_default_versions(engine: Engine, settings: Settings) -> None:
    """TorchServe's ``"defaultVersion": true`` in the ``models`` JSON, among loaded versions."""
    for name, versions in settings.model_settings().items():
        for version, opts in versions.items():
            if opts.get("defaultVersion") is True and version in engine.models.get(name, {}):
                engine.set_default(name, version)


def new_engine(settings: Settings, metrics: Metrics | None = None) -> Engine:
    """The engine ``settings.engine`` names; Ray is imported only for ``engine=ray``."""
    if settings.engine == "ray":
        from ocrserve.server.ray_engine import RayEngine

        return RayEngine(settings, metrics)
    return Engine(settings, metrics)


async def _empty_metrics(request: Request) -> Response:
    """``metrics_mode=log``: TorchServe answers 200 with an empty body."""
    return Response(b"", media_type="text/plain")


def model_config(settings: Settings, spec: ModelSpec) -> ModelConfig:
    """Startup config of a model: defaults, then its entry in the ``models`` JSON."""
    opts = settings.model_settings().get(spec.name, {}).get(spec.version, {})
    keys = {"minWorkers": "min_workers", "maxWorkers": "max_workers", "batchSize": "batch_size",
            "maxBatchDelay": "max_batch_delay", "responseTimeout": "response_timeout",
            "startupTimeout": "startup_timeout"}  # fmt: skip
    overrides = {field: opts[key] for key, field in keys.items() if key in opts}
    if "deviceType" in opts:
        overrides["device_type"] = opts["deviceType"]
    if "minWorkers" in opts and "maxWorkers" not in opts:
        overrides["max_workers"] = max(opts["minWorkers"], settings.default_workers_per_model)
    return ModelConfig.from_settings(settings, loaded_at_startup=True, **overrides)
