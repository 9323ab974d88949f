"""Token authorization as in TorchServe 0.11+: ``key_file.json``, bearer keys, ``GET /token``.

TorchServe (``frontend/server/.../util/TokenAuthorization.java`` and
``http/TokenAuthorizationHandler.java``) writes three keys into ``key_file.json`` in the working
directory: ``management`` (management API), ``inference`` (inference API), each expiring after
``token_expiration_min`` minutes (default 60), and ``API``, which never expires and only
authorizes ``GET /token?type=management|inference`` on the management port. That call replaces
the named key (and its expiration) in the file; the new key is read from the file, never sent
back. Requests carry ``Authorization: Bearer <key>``.

What ocrserve does differently, on purpose:

- A failed check is 401 (TorchServe 0.12 answers 400, because its ``InvalidKeyException`` is
  a ``ModelException``); the type and message are TorchServe's. The 401 carries
  ``WWW-Authenticate: Bearer`` as RFC 6750 asks.
- Keys are 256-bit ``secrets.token_urlsafe`` strings (TorchServe: 48 bits), compared in
  constant time; the file is created 0600 and replaced atomically (TorchServe writes it, then
  chmods it).
- ``/ping`` on the inference port needs no key (TorchServe 0.12 asks for the inference key),
  so health probes need no secret, nor do ``/v2/health/live`` and ``/v2/health/ready``; see
  `INFERENCE_EXEMPT_PATHS`. The API description (``/``,
  ``/api-description``) is exempt in both, as TorchServe checks it before the token.
- ``GET /token`` with an unknown ``type`` is 400 ``BadRequestException`` naming the valid
  values; success answers a small JSON object without the key (TorchServe: an empty body).
- Keys never begin with ``-`` (one ``token_urlsafe`` in 64 would), so ``--token KEY`` works.
- Operators can supply the keys (TorchServe has no such option): ``OCRSERVE_INFERENCE_KEY``,
  ``OCRSERVE_MANAGEMENT_KEY``, ``OCRSERVE_API_KEY`` (see `KEY_ENV`), checked by `check_key`.
  A supplied inference or management key does not expire; ``GET /token`` still replaces it
  with a random, expiring one. The key file goes where the ``key_file`` setting says.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ocrserve.errors import BadRequest, ConfigError, InvalidToken, OcrServeError
from ocrserve.server.responses import error_response_for, json_response

if TYPE_CHECKING:
    from ocrserve.settings import Settings

__all__ = [
    "DESCRIPTION_PATHS",
    "INFERENCE_EXEMPT_PATHS",
    "KEY_ENV",
    "KEY_FILE_NAME",
    "MANAGEMENT_EXEMPT_PATHS",
    "TOKEN_PATH",
    "InvalidToken",
    "TokenAuthMiddleware",
    "TokenStore",
    "check_key",
    "new_key",
    "token_routes",
]

ApiName = Literal["inference", "management"]
KeyName = Literal["inference", "management", "API"]

KEY_FILE_NAME = "key_file.json"
TOKEN_PATH = "/token"
#: Paths TorchServe answers before its token check (its ApiDescriptionRequestHandler).
DESCRIPTION_PATHS: tuple[str, ...] = ("/", "/api-description")
#: Health probes need no key: TorchServe's /ping and the Open Inference Protocol's (Kubernetes).
INFERENCE_EXEMPT_PATHS: tuple[str, ...] = (
    *DESCRIPTION_PATHS,
    "/ping",
    "/v2/health/live",
    "/v2/health/ready",
)
MANAGEMENT_EXEMPT_PATHS: tuple[str, ...] = DESCRIPTION_PATHS

# TorchServe's two messages: "Authorization" on the APIs, "Authentication" on /token.
_API_MESSAGE = (
    "Token Authorization failed. Token either incorrect, expired, or not provided correctly"
)
_TOKEN_API_MESSAGE = (
    "Token Authentication failed. Token either incorrect, expired, or not provided correctly"
)
# TorchServe's pattern is ^Bearer\s+(\S+)$; the scheme is matched case-insensitively (RFC 7235).
_BEARER = re.compile(r"bearer[ \t]+([!-~]+)", re.IGNORECASE)
_MAX_HEADER = 1024
_KEY_NAMES: tuple[KeyName, ...] = ("management", "inference", "API")
_KEY_BYTES = 32
#: Environment variables an operator can set to supply a key instead of a random one.
KEY_ENV: dict[KeyName, str] = {
    "inference": "OCRSERVE_INFERENCE_KEY",
    "management": "OCRSERVE_MANAGEMENT_KEY",
    "API": "OCRSERVE_API_KEY",
}
# RFC 6750's token68 characters; at least 32 of them (a guessable key is no key).
_SUPPLIED_KEY = re.compile(r"[A-Za-z0-9._~+/=][A-Za-z0-9._~+/=-]{31,255}")


def new_key() -> str:
    """A random 256-bit key that does not begin with ``-`` (a command line would take it for
    an option: ``--token -abc``)."""
    while True:
        key = secrets.token_urlsafe(_KEY_BYTES)
        if not key.startswith("-"):
            return key


def check_key(value: str, source: str) -> str:
    """``value`` if it is a usable supplied key, else `ConfigError` naming ``source`` and the
    rule broken, never the value."""
    if not _SUPPLIED_KEY.fullmatch(value):
        if value.startswith("-"):
            why = "must not begin with '-'"
        elif not 32 <= len(value) <= 256:
            why = f"must be 32 to 256 characters long, not {len(value)}"
        else:
            why = "may only hold letters, digits and - . _ ~ + / ="
        raise ConfigError(
            f"{source}: the key {why} (make one with: python -c "
            "'import secrets; print(secrets.token_hex(32))')"
        )
    return value


def supplied_keys(environ: Mapping[str, str]) -> dict[KeyName, str]:
    """The keys the operator set in `KEY_ENV`'s variables, checked and distinct."""
    keys: dict[KeyName, str] = {}
    for name, var in KEY_ENV.items():
        value = environ.get(var)
        if value:
            keys[name] = check_key(value, var)
    if len(set(keys.values())) < len(keys):
        raise ConfigError(
            f"{', '.join(KEY_ENV[n] for n in keys)}: each key must differ from the others"
        )
    return keys


@dataclass(frozen=True)
class _Key:
    value: str
    expires_at: float | None  # seconds since the epoch; None never expires (the API key)


def _iso_utc(seconds: float) -> str:
    """An instant as Java's ``Instant.toString()`` prints it: ``2024-02-16T21:12:24.801167Z``."""
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``; the file is 0600 from the moment it exists."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)  # mkstemp creates 0600 already; say so anyway
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class TokenStore:
    """The three keys, their expirations, and the key file that publishes them."""

    def __init__(
        self,
        path: Path,
        keys: dict[KeyName, _Key],
        expiration_minutes: float,
        clock: Callable[[], float],
    ) -> None:
        self.path = path
        self.expiration_minutes = expiration_minutes
        self._keys = keys
        self._clock = clock
        self._lock = threading.Lock()

    @classmethod
    def for_server(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> TokenStore:
        """The server's keys: supplied in `KEY_ENV`'s variables, else random; written to
        ``key_file`` (default ``./key_file.json``)."""
        supplied = supplied_keys(os.environ if environ is None else environ)
        return cls.create(settings.key_path(), settings.token_expiration_min, supplied=supplied)

    @classmethod
    def create(
        cls,
        path: Path,
        expiration_minutes: float = 60,
        *,
        clock: Callable[[], float] = time.time,
        supplied: Mapping[KeyName, str] | None = None,
    ) -> TokenStore:
        """Keys written to ``path`` (TorchServe: ``./key_file.json``): ``supplied`` ones, which
        do not expire until rotated, else new random ones."""
        if expiration_minutes <= 0:
            raise ConfigError(
                f"token_expiration_min={expiration_minutes}: must be a positive number of minutes"
            )
        expires = clock() + expiration_minutes * 60
        given = dict(supplied or {})
        keys: dict[KeyName, _Key] = {
            name: _Key(given[name], None)
            if name in given
            else _Key(new_key(), None if name == "API" else expires)
            for name in _KEY_NAMES
        }
        store = cls(Path(path), keys, expiration_minutes, clock)
        with store._lock:
            store._write()
        return store

    def key(self, name: KeyName) -> str:
        """The current key (for logs at start and for tests)."""
        return self._keys[name].value

    def expires_at(self, name: KeyName) -> float | None:
        return self._keys[name].expires_at

    def check(self, api: KeyName, header: str | None) -> None:
        """Pass if ``header`` is ``Bearer <the current, unexpired key of api>``; else 401."""
        message = _TOKEN_API_MESSAGE if api == "API" else _API_MESSAGE
        token = _bearer_token(header)
        current = self._keys[api]  # one read: a concurrent rotate swaps the whole entry
        if token is None or not hmac.compare_digest(token.encode(), current.value.encode()):
            raise InvalidToken(message)
        if current.expires_at is not None and self._clock() >= current.expires_at:
            raise InvalidToken(message)

    def rotate(self, name: ApiName) -> str:
        """A new key and expiration for ``name``, written to the file; returns the key."""
        if name not in ("management", "inference"):
            raise ValueError(f"only the management and inference keys rotate, not {name!r}")
        with self._lock:
            new = _Key(new_key(), self._clock() + self._ttl())
            self._keys = {**self._keys, name: new}
            self._write()
        return new.value

    def delete_file(self) -> None:
        """Remove the key file at shutdown, as ``torchserve --stop`` does."""
        self.path.unlink(missing_ok=True)

    def to_json(self) -> dict[str, dict[str, str]]:
        """The key file's content, in TorchServe's layout and order."""
        doc: dict[str, dict[str, str]] = {}
        for name in ("management", "inference", "API"):
            entry = self._keys[name]
            doc[name] = {"key": entry.value}
            if entry.expires_at is not None:
                doc[name]["expiration time"] = _iso_utc(entry.expires_at)
        return doc

    def _ttl(self) -> float:
        return self.expiration_minutes * 60

    def _write(self) -> None:
        # Gson's pretty printer, which TorchServe uses, indents by two spaces.
        _write_private(self.path, json.dumps(self.to_json(), indent=2) + "\n")


def _bearer_token(header: str | None) -> str | None:
    """The key in an ``Authorization`` value, or None for anything malformed."""
    if header is None or len(header) > _MAX_HEADER or not header.isascii():
        return None
    match = _BEARER.fullmatch(header.strip(" \t"))
    return match.group(1) if match else None


def token_routes(store: TokenStore) -> list[Route]:
    """``GET /token?type=management|inference`` for the management port, authorized by the API
    key. Add it only when token authorization is on (TorchServe answers 404 otherwise)."""

    async def regenerate(request: Request) -> Response:
        try:
            store.check("API", request.headers.get("authorization"))
            kinds = request.query_params.getlist("type")
            kind = kinds[0] if kinds else ""
            if kind not in ("management", "inference"):
                shown = repr(kind) if kinds else "no type"
                raise BadRequest(
                    f"Invalid token type {shown}: use /token?type=management or "
                    "/token?type=inference."
                )
            name: ApiName = "management" if kind == "management" else "inference"
            store.rotate(name)
        except OcrServeError as exc:
            return _error(exc)
        return json_response(
            {
                "message": f"Regenerated the {name} key; read it from {store.path.name}.",
                "expiration time": _iso_utc(store.expires_at(name) or 0.0),
            }
        )

    return [Route(TOKEN_PATH, regenerate, methods=["GET"])]


def _error(exc: OcrServeError, path: str = TOKEN_PATH) -> Response:
    response = error_response_for(path, exc)
    if exc.status == 401:
        response.headers["www-authenticate"] = "Bearer"
    return response


class TokenAuthMiddleware:
    """Pure-ASGI middleware: every HTTP request to ``app`` needs ``api``'s key, except the
    paths in ``exempt_paths`` (exact matches) and, on the management port, ``/token``, which
    its route checks against the API key. Pass `INFERENCE_EXEMPT_PATHS` or
    `MANAGEMENT_EXEMPT_PATHS` for ocrserve's defaults."""

    def __init__(
        self,
        app: ASGIApp,
        store: TokenStore,
        api: ApiName,
        exempt_paths: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.store = store
        self.api: ApiName = api
        self.exempt = frozenset(exempt_paths) | (
            {TOKEN_PATH} if api == "management" else frozenset()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        header = _first_authorization(scope)
        try:
            self.store.check(self.api, header)
        except InvalidToken as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await _error(exc, scope["path"])(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _first_authorization(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            return bytes(value).decode("latin-1")  # non-ASCII bytes then fail isascii()
    return None
