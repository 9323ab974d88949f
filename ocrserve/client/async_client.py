"""`AsyncClient`: the same methods as `Client`, awaited, on ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
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
)
from ocrserve.client.results import Result
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
                except (OcrServeError, httpx.HTTPError) as exc:
                    if not return_exceptions:
                        raise
                    return exc
                finally:
                    done += 1
                    if progress is not None:
                        progress(done, len(items))

        return list(await asyncio.gather(*(one(i) for i in items)))

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
        attempt = 0
        reread = False
        while True:
            try:
                response = await self._http.request(
                    call.method, call.url, params=call.params, content=call.content,
                    headers=self.keys.headers(call.key),
                )  # fmt: skip
                return call.result(response)
            except (OcrServeError, httpx.TransportError) as exc:
                if isinstance(exc, OcrServeError) and exc.status == 401 and not reread:
                    reread = True
                    if self.keys.reread(call.key):
                        continue
                attempt += 1
                delay = self.retry.after(call, exc, attempt)
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
