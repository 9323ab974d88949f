"""`Client`: ocrserve's (and TorchServe's) REST API from Python, on ``httpx.Client``."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

import httpx

from ocrserve.client.connection import (
    Call,
    Calls,
    ImageInput,
    Keys,
    RetryPolicy,
    Server,
    Tries,
    raise_for_answer,
)
from ocrserve.client.pages import PageReader, stream_headers
from ocrserve.client.results import Page, Result
from ocrserve.errors import OcrServeError

__all__ = ["Client", "Progress"]

#: ``progress(done, total)``, called after each image of `Client.predict_many` (each page of
#: `Client.predict_pages`).
Progress = Callable[[int, int], None]


class Client:
    """A client of one server.

    ``url`` is the inference API; ``management_url`` the management API (default: what the
    running server's record says, else port 8081 beside port 8080). ``token`` and
    ``management_token`` are the keys; without them they are read from ``key_file``, else found
    as ``ocrserve key`` finds them. Predictions and other idempotent requests are retried
    ``retries`` times on 503 and on connection errors, after ``backoff``, 2 x ``backoff``, ...
    seconds; register and unregister never are.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        token: str | None = None,
        key_file: str | os.PathLike[str] | None = None,
        management_url: str | None = None,
        management_token: str | None = None,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.server = Server(url, management_url)
        self.keys = Keys(self.server, token, management_token, key_file)
        self.retry = RetryPolicy(retries, backoff)
        self._calls = Calls(self.server)
        self._http = httpx.Client(timeout=timeout)

    # -- inference -----------------------------------------------------------------------

    def predict(
        self, model: str, image: ImageInput, version: str | None = None, **options: Any
    ) -> Result:
        """The model's answer for one image (a path, bytes, a NumPy array or a PIL image);
        ``options`` go as query parameters."""
        result: Result = self._send(self._calls.predict(model, image, version, options))
        return result

    def predict_many(
        self,
        model: str,
        images: Iterable[ImageInput],
        version: str | None = None,
        *,
        concurrency: int = 4,
        progress: Progress | None = None,
        return_exceptions: bool = False,
        **options: Any,
    ) -> list[Any]:
        """Results in the order of ``images``, ``concurrency`` requests at a time. With
        ``return_exceptions`` a failed image gives its exception in place of a result."""
        items = list(images)
        done = 0
        lock = threading.Lock()

        def one(image: ImageInput) -> Any:
            nonlocal done
            try:
                return self.predict(model, image, version, **options)
            except (OcrServeError, httpx.HTTPError, OSError) as exc:
                if not return_exceptions:
                    raise
                return exc
            finally:
                with lock:
                    done += 1
                    if progress is not None:
                        progress(done, len(items))

        with ThreadPoolExecutor(max(1, concurrency)) as pool:
            return list(pool.map(one, items))

    def predict_pages(
        self,
        model: str,
        document: ImageInput,
        version: str | None = None,
        *,
        progress: Progress | None = None,
        **options: Any,
    ) -> Generator[Page, None, None]:
        """The pages of a PDF or multi-page TIFF (a path or its bytes), each as soon as the
        server has read it (a streamed answer). ``progress(done, total)`` is called with the
        page count when the answer starts (``done`` 0) and after each page. A page that could
        not be read comes with its ``error``. Closing the iterator (or leaving a ``for`` loop
        over it) closes the answer, and the server stops reading the other pages. Failures
        before the first page are retried as for `predict`; none after it."""
        call = self._calls.predict(model, document, version, options)
        return self._pages(call, progress)

    def ping(self) -> str:
        """``Healthy``; an unhealthy server raises `InternalServerError`."""
        return str(self._send(self._calls.ping()))

    def models(self) -> list[dict[str, Any]]:
        """The served models from the inference port (``GET /ocrserve/models``): name, default
        version, task, versions and request options of each; needs only the inference key."""
        return list(self._send(self._calls.served_models()))

    # -- management ----------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """Every registered model (``GET /models``, all pages): ``modelName``, ``modelUrl``."""
        models: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._send(self._calls.list_models(1000, token))
            models += page["models"]
            token = page.get("nextPageToken")
            if not token:
                return models

    def describe(self, model: str, version: str | None = None) -> list[dict[str, Any]]:
        """TorchServe's describe array (``version="all"``: every version)."""
        return list(self._send(self._calls.describe(model, version)))

    def scale(
        self,
        model: str,
        min_worker: int,
        max_worker: int | None = None,
        version: str | None = None,
        *,
        synchronous: bool = True,
    ) -> str:
        """Scale a model's workers; the server's message."""
        call = self._calls.scale(model, version, min_worker, max_worker, synchronous)
        return str(self._send(call))

    def set_default(self, model: str, version: str) -> str:
        return str(self._send(self._calls.set_default(model, version)))

    def register(self, url: str, **options: Any) -> str:
        """Register an archive (``model_name``, ``initial_workers``, ``synchronous``,
        ``batch_size``, ... as TorchServe names them); never retried."""
        return str(self._send(self._calls.register(url, options)))

    def unregister(self, model: str, version: str | None = None) -> str:
        return str(self._send(self._calls.unregister(model, version)))

    # -- plumbing ------------------------------------------------------------------------

    def _send(self, call: Call) -> Any:
        tries = Tries(call, self.retry, self.keys)
        while True:
            try:
                response = self._http.request(
                    call.method, call.url, params=call.params, content=call.content,
                    headers=self.keys.headers(call.key),
                )  # fmt: skip
                return call.result(response)
            except (OcrServeError, httpx.TransportError) as exc:
                delay = tries.wait(exc)
                if delay is None:
                    raise
                time.sleep(delay)

    def _pages(self, call: Call, progress: Progress | None) -> Generator[Page, None, None]:
        tries = Tries(call, self.retry, self.keys)
        while True:
            yielded = False
            try:
                with self._http.stream(
                    call.method, call.url, params=call.params, content=call.content,
                    headers=stream_headers(self.keys.headers(call.key)),
                ) as response:  # fmt: skip
                    reader = PageReader(response, progress)
                    if not reader.streamed:
                        response.read()
                        for page in reader.answer(raise_for_answer(response)):
                            yielded = True
                            yield page
                        return
                    for line in response.iter_lines():
                        streamed = reader.line(line)
                        if streamed is not None:
                            yielded = True
                            yield streamed
                    reader.finish()
                    return
            except (OcrServeError, httpx.TransportError) as exc:
                delay = None if yielded else tries.wait(exc)
                if delay is None:
                    raise
                time.sleep(delay)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()
