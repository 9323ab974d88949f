"""`AsyncClient`: the same methods as `Client`, awaited, on ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Iterable
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
from ocrserve.client.sync_client import Progress
from ocrserve.errors import OcrServeError

__all__ = ["AsyncClient"]


class AsyncClient:
    """`Client` for asyncio: the same arguments, methods and retries, each awaited."""

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
        self._http = httpx.AsyncClient(timeout=timeout)

    async def predict(
        self, model: str, image: ImageInput, version: str | None = None, **options: Any
    ) -> Result:
        """See `Client.predict`."""
        result: Result = await self._send(self._calls.predict(model, image, version, options))
        return result

    async def predict_many(
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
        """See `Client.predict_many`."""
        items = list(images)
        gate = asyncio.Semaphore(max(1, concurrency))
        done = 0

        async def one(image: ImageInput) -> Any:
            nonlocal done
            async with gate:
                try:
                    return await self.predict(model, image, version, **options)
                except (OcrServeError, httpx.HTTPError, OSError) as exc:
                    if not return_exceptions:
                        raise
                    return exc
                finally:
                    done += 1
                    if progress is not None:
                        progress(done, len(items))

        return list(await asyncio.gather(*(one(i) for i in items)))

    def predict_pages(
        self,
        model: str,
        document: ImageInput,
        version: str | None = None,
        *,
        progress: Progress | None = None,
        **options: Any,
    ) -> AsyncGenerator[Page, None]:
        """See `Client.predict_pages`: ``async for page in client.predict_pages(...)``. Leaving
        the loop early closes the answer once the generator is collected; ``async with
        contextlib.aclosing(client.predict_pages(...)) as pages`` closes it at once."""
        call = self._calls.predict(model, document, version, options)
        return self._pages(call, progress)

    async def ping(self) -> str:
        return str(await self._send(self._calls.ping()))

    async def models(self) -> list[dict[str, Any]]:
        return list(await self._send(self._calls.served_models()))

    async def list_models(self) -> list[dict[str, Any]]:
        models: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = await self._send(self._calls.list_models(1000, token))
            models += page["models"]
            token = page.get("nextPageToken")
            if not token:
                return models

    async def describe(self, model: str, version: str | None = None) -> list[dict[str, Any]]:
        return list(await self._send(self._calls.describe(model, version)))

    async def scale(
        self,
        model: str,
        min_worker: int,
        max_worker: int | None = None,
        version: str | None = None,
        *,
        synchronous: bool = True,
    ) -> str:
        call = self._calls.scale(model, version, min_worker, max_worker, synchronous)
        return str(await self._send(call))

    async def set_default(self, model: str, version: str) -> str:
        return str(await self._send(self._calls.set_default(model, version)))

    async def register(self, url: str, **options: Any) -> str:
        return str(await self._send(self._calls.register(url, options)))

    async def unregister(self, model: str, version: str | None = None) -> str:
        return str(await self._send(self._calls.unregister(model, version)))

    async def _send(self, call: Call) -> Any:
        tries = Tries(call, self.retry, self.keys)
        while True:
            try:
                response = await self._http.request(
                    call.method, call.url, params=call.params, content=call.content,
                    headers=self.keys.headers(call.key),
                )  # fmt: skip
                return call.result(response)
            except (OcrServeError, httpx.TransportError) as exc:
                delay = tries.wait(exc)
                if delay is None:
                    raise
                await asyncio.sleep(delay)

    async def _pages(self, call: Call, progress: Progress | None) -> AsyncGenerator[Page, None]:
        tries = Tries(call, self.retry, self.keys)
        while True:
            yielded = False
            try:
                async with self._http.stream(
                    call.method, call.url, params=call.params, content=call.content,
                    headers=stream_headers(self.keys.headers(call.key)),
                ) as response:  # fmt: skip
                    reader = PageReader(response, progress)
                    if not reader.streamed:
                        await response.aread()
                        for page in reader.answer(raise_for_answer(response)):
                            yielded = True
                            yield page
                        return
                    async for line in response.aiter_lines():
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
                await asyncio.sleep(delay)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.aclose()
