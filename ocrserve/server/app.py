"""Wiring: one Starlette app per API surface, the shared engine, and a graceful run loop.

`serve` runs every HTTP server in one event loop. SIGTERM or SIGINT stops accepting
connections, lets in-flight requests finish (uvicorn's graceful shutdown), then stops the
workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Generator, Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ocrserve.errors import (
    ConfigError,
    InternalServerError,
    MethodNotAllowed,
    OcrServeError,
    ResourceNotFound,
)
from ocrserve.modelspec import ModelSpec
from ocrserve.server.engine import Engine
from ocrserve.server.inference import inference_routes
from ocrserve.server.responses import error_response
from ocrserve.settings import Settings, parse_address
from ocrserve.store import LoadFailure

__all__ = ["build_app", "serve"]

log = logging.getLogger("ocrserve")


async def _ocrserve_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OcrServeError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(ResourceNotFound())
    if exc.status_code == 405:
        return error_response(MethodNotAllowed())
    err = OcrServeError(str(exc.detail))
    err.status = exc.status_code
    err.type = "BadRequestException" if exc.status_code < 500 else "InternalServerException"
    return error_response(err)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(InternalServerError(f"{type(exc).__name__}: {exc}"))


def build_app(routes: Sequence[Route]) -> Starlette:
    """A Starlette app whose every error is TorchServe's error JSON."""
    return Starlette(
        routes=list(routes),
        exception_handlers={
            OcrServeError: _ocrserve_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `serve` (several servers, one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


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


async def serve(
    settings: Settings, specs: Sequence[ModelSpec], failures: Sequence[LoadFailure] = ()
) -> None:
    """Bind the ports, start the workers, serve until SIGTERM/SIGINT, then shut down cleanly."""
    surfaces = [("inference_address", settings.inference_address)]
    sockets = [_bind(key, addr) for key, addr in surfaces]  # fail fast when a port is taken
    engine = Engine(settings)
    apps = [build_app(inference_routes(engine))]
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
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    await engine.start(specs, failures)
    for (key, addr), _ in zip(surfaces, sockets):
        log.info("%s: %s", key, addr)
    try:
        await asyncio.gather(*(s.serve(sockets=[sock]) for s, sock in zip(servers, sockets)))
    finally:
        await engine.shutdown()
        for sock in sockets:
            sock.close()
        log.info("stopped")
