"""What the sync and async clients share: where the server is, its keys, the retry policy,
images as request bodies, and answers as results or exceptions. No I/O on the network here.

Keys are found the way ``ocrserve key`` finds them (`ocrserve.server.instance.find_key_file`
and `read_key`): the key file the running server's record names, else ``./key_file.json``.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocrserve.errors import ConfigError, OcrServeError, error_from_answer
from ocrserve.server.instance import ServerRecord, find_key_file, read_key
from ocrserve.settings import Settings, parse_address

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Call",
    "Calls",
    "ImageInput",
    "Keys",
    "RetryPolicy",
    "Server",
    "Tries",
    "describe_failure",
    "image_body",
    "is_retryable",
    "raise_for_answer",
]

log = logging.getLogger("ocrserve.client")

#: A path, the encoded bytes, a NumPy array (H x W, H x W x 3 RGB or x 4 RGBA) or a PIL image.
ImageInput = Any

#: Statuses worth another try: the model has no worker yet, or its queue is full.
RETRY_STATUSES = frozenset({503})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential back-off, for idempotent requests only."""

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (1, 2, ...)."""
        return float(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))

    def after(self, call: Call, exc: BaseException, attempt: int) -> float | None:
        """Seconds to wait before retry ``attempt`` of ``call`` after ``exc`` (logged), or
        None when it must not be retried."""
        if not call.idempotent or attempt > self.retries or not is_retryable(exc):
            return None
        delay = self.delay(attempt)
        log.warning("%s %s: %s; retry %d of %d in %.1f s", call.method, call.url,
                    describe_failure(exc), attempt, self.retries, delay)  # fmt: skip
        return delay


class Tries:
    """The tries of one call: after each failure, the seconds to wait before the next one
    (none after a 401 when the key file now holds another key), or None to give up."""

    def __init__(self, call: Call, policy: RetryPolicy, keys: Keys) -> None:
        self.call, self.policy, self.keys = call, policy, keys
        self.attempt = 0
        self.reread = False

    def wait(self, exc: BaseException) -> float | None:
        if isinstance(exc, OcrServeError) and exc.status == 401 and not self.reread:
            self.reread = True
            if self.keys.reread(self.call.key):
                return 0.0
        self.attempt += 1
        return self.policy.after(self.call, exc, self.attempt)


def _url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _base(key: str, address: str) -> str:
    return _url(*parse_address(key, address))


class Server:
    """The addresses of a server: inference URL and management URL (the running server's
    record on this machine says it; else port 8081 beside an inference port 8080)."""

    def __init__(self, url: str, management_url: str | None) -> None:
        self.url = _base("url", url)
        self.settings = Settings(inference_address=self.url)
        self.record = ServerRecord.read(self.settings.pid_path())
        if management_url is None and self.record is not None:
            management_url = self.record.management_address
        if management_url is None:
            host, port = parse_address("url", self.url)
            if port == 8080:
                management_url = _url(host, 8081)
        self.management_url = _base("management_url", management_url) if management_url else None

    def management(self, path: str) -> str:
        if self.management_url is None:
            raise ConfigError(
                f"no management URL for the server at {self.url}: pass management_url=... "
                "(its management_address)"
            )
        return self.management_url + path


class Keys:
    """The inference and management keys: given, read from ``key_file``, or found as
    ``ocrserve key`` finds them. Keys read from a file are read again after a refusal (the
    server may have rotated them)."""

    def __init__(
        self,
        server: Server,
        token: str | None,
        management_token: str | None,
        key_file: str | os.PathLike[str] | None,
    ) -> None:
        self.server = server
        self.given = {"inference": token, "management": management_token}
        self.path: Path | None = None
        if key_file is not None:
            self.path = Path(key_file)
        elif token is None or management_token is None:
            try:
                found = find_key_file(server.settings)
            except ConfigError:  # that server runs without token authorization
                found = None
            if found is not None and (server.record is not None or found.exists()):
                self.path = found
        self._read: dict[str, str | None] = {}

    def get(self, kind: str) -> str | None:
        if self.given[kind]:
            return self.given[kind]
        if self.path is None:
            return None
        if kind not in self._read:
            management = self.server.management_url or "http://127.0.0.1:8081"
            self._read[kind] = read_key(self.path, kind, management)
        return self._read[kind]

    def headers(self, kind: str) -> dict[str, str]:
        key = self.get(kind)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def reread(self, kind: str) -> bool:
        """After a 401: True when the key file now holds another key (worth one more try)."""
        if self.given[kind] or self.path is None or kind not in self._read:
            return False
        old = self._read.pop(kind)
        try:
            return self.get(kind) != old
        except ConfigError:
            return False


def image_body(image: ImageInput) -> bytes:
    """The request body for ``image``: a file's bytes, the bytes given, or a PNG of an array
    or a PIL image (NumPy and Pillow are imported only for those). A path that cannot be read
    raises Python's own `OSError` (`FileNotFoundError` for a missing file), as `open` does."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        return Path(image).read_bytes()
    pil = sys.modules.get("PIL.Image")
    if pil is None and hasattr(image, "__array_interface__"):
        from PIL import Image as pil
    if pil is not None and isinstance(image, pil.Image):
        return _png(image)
    if hasattr(image, "__array_interface__") and pil is not None:
        import numpy as np

        array = np.asarray(image)
        if array.dtype != np.uint8:
            raise ConfigError(f"an image array must be uint8, not {array.dtype}")
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
            raise ConfigError(
                f"an image array must be H x W, H x W x 3 (RGB) or H x W x 4, not {array.shape}"
            )
        return _png(pil.fromarray(array))
    raise ConfigError(
        f"cannot send a {type(image).__name__} as an image: give a path, bytes, a NumPy array "
        "or a PIL image"
    )


def _png(image: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def answer_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def raise_for_answer(response: httpx.Response) -> Any:
    """The answer's JSON, or the exception its TorchServe error JSON names."""
    body = answer_json(response)
    if response.status_code < 400:
        return body if body is not None else response.text
    raise error_from_answer(response.status_code, body, response.text)


def is_retryable(exc: BaseException) -> bool:
    """A failure another try may fix: 503, or a connection that failed (refused, timed out
    while connecting, reset or closed by the server). A read timeout is not retried: the
    server has the request, and another try would wait as long again."""
    import httpx

    if isinstance(exc, OcrServeError):
        return exc.status in RETRY_STATUSES
    connection = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadError, httpx.WriteError,
                  httpx.RemoteProtocolError)  # fmt: skip
    return isinstance(exc, connection)


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, OcrServeError):
        return f"{exc.status} {exc.type}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def management_query(**params: Any) -> dict[str, str]:
    """Query parameters with None dropped and booleans as TorchServe spells them."""
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


@dataclass(frozen=True)
class Call:
    """One request, as both clients send it: where, with which key, whether it may be retried,
    and how to read the answer."""

    method: str
    url: str
    key: str  # "inference" or "management"
    idempotent: bool
    params: dict[str, str] | None = None
    content: bytes | None = None
    #: Takes the answer's JSON.
    parse: Any = None

    def result(self, response: httpx.Response) -> Any:
        body = raise_for_answer(response)
        return self.parse(body) if self.parse is not None else body


def _status_message(body: Any) -> str:
    return str(body.get("status", body)) if isinstance(body, dict) else str(body)


class Calls:
    """The requests of the client's methods, built once for both clients."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def predict(self, model: str, image: ImageInput, version: str | None,
                options: dict[str, Any]) -> Call:  # fmt: skip
        from ocrserve.client.results import parse_result

        path = f"/predictions/{model}" + (f"/{version}" if version else "")
        params = management_query(**options) or None
        body = image_body(image)
        return Call("POST", self.server.url + path, "inference", True, params, body, parse_result)

    def ping(self) -> Call:
        return Call("GET", self.server.url + "/ping", "inference", True, parse=_status_message)

    def served_models(self) -> Call:
        return Call("GET", self.server.url + "/ocrserve/models", "inference", True,
                    parse=lambda body: body["models"])  # fmt: skip

    def list_models(self, limit: int | None, token: str | None) -> Call:
        params = management_query(limit=limit, next_page_token=token)
        return Call("GET", self.server.management("/models"), "management", True, params)

    def describe(self, model: str, version: str | None) -> Call:
        path = f"/models/{model}" + (f"/{version}" if version else "")
        return Call("GET", self.server.management(path), "management", True)

    def scale(self, model: str, version: str | None, min_worker: int, max_worker: int | None,
              synchronous: bool) -> Call:  # fmt: skip
        path = f"/models/{model}" + (f"/{version}" if version else "")
        params = management_query(min_worker=min_worker, max_worker=max_worker,
                                  synchronous=synchronous)  # fmt: skip
        return Call("PUT", self.server.management(path), "management", True, params,
                    parse=_status_message)  # fmt: skip

    def set_default(self, model: str, version: str) -> Call:
        path = f"/models/{model}/{version}/set-default"
        return Call("PUT", self.server.management(path), "management", True,
                    parse=_status_message)  # fmt: skip

    def register(self, url: str, options: dict[str, Any]) -> Call:
        params = management_query(url=url, **options)
        return Call("POST", self.server.management("/models"), "management", False, params,
                    parse=_status_message)  # fmt: skip

    def unregister(self, model: str, version: str | None) -> Call:
        path = f"/models/{model}" + (f"/{version}" if version else "")
        return Call("DELETE", self.server.management(path), "management", False,
                    parse=_status_message)  # fmt: skip
