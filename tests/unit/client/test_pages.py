"""`Client.predict_pages` and `AsyncClient.predict_pages` on httpx's mock transport: pages as
their lines arrive, progress from ``X-Page-Count``, error pages, retries only before the first
page, closing early closes the answer, and a server that answers at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from ocrserve import errors
from ocrserve.client import AsyncClient, Client, Document, EndToEnd, Page, Recognition, Result
from ocrserve.client.pages import NDJSON

WORDS = ["ALPHA", "BRAVO", "CHARLIE"]


def _page(number: int, word: str) -> dict[str, Any]:
    line = {"box": [0, 0, 9, 0, 9, 4, 0, 4], "box_score": 0.9, "text": word, "text_score": 0.99}
    return {"page": number, "width": 640, "height": 240, "time_ms": 5.0, "done_at": 1.0 + number,
            "result": [line]}  # fmt: skip


def _error(code: int, type_: str, message: str) -> dict[str, Any]:
    return {"code": code, "type": type_, "message": message}


TIMED_OUT = {"page": 2, "width": 640, "height": 240, "time_ms": 30000.0, "done_at": 3.0,
             "error": _error(504, "WorkerTimeoutException", "too slow")}  # fmt: skip


class Lines(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A streamed body, one line per chunk, that records how far it was read and its close."""

    def __init__(self, lines: list[Any], fail_after: int | None = None) -> None:
        self.lines = [(json.dumps(x) if not isinstance(x, str) else x) + "\n" for x in lines]
        self.fail_after = fail_after
        self.sent = 0
        self.closed = False

    def _chunks(self) -> Iterator[bytes]:
        for line in self.lines:
            if self.fail_after is not None and self.sent == self.fail_after:
                raise httpx.ReadError("connection reset")
            self.sent += 1
            yield line.encode()

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks():
            yield chunk

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def _streamed(body: Lines, count: int | None = 3) -> httpx.Response:
    headers = {"content-type": NDJSON}
    if count is not None:
        headers["x-page-count"] = str(count)
    return httpx.Response(200, headers=headers, stream=body)


Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler) -> Client:
    client = Client("http://127.0.0.1:9", token="k" * 43, retries=2, backoff=0)
    client._http = httpx.Client(transport=httpx.MockTransport(handler))
    return client


def _async_client(handler: Handler) -> AsyncClient:
    client = AsyncClient("http://127.0.0.1:9", token="k" * 43, retries=2, backoff=0)
    client._http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return client


def _text(page: Page) -> str:
    assert isinstance(page.result, EndToEnd), page
    return page.result.text


def test_each_page_is_given_as_its_line_arrives() -> None:
    body = Lines([_page(1, "ALPHA"), TIMED_OUT, _page(3, "CHARLIE")])
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return _streamed(body)

    progress: list[tuple[int, int]] = []
    read_when_given: list[int] = []
    with _client(handler) as client:
        pages = []
        for page in client.predict_pages(
            "ocr", b"%PDF-1.7", "2.0", progress=lambda d, t: progress.append((d, t)),
            pages="1-3", char_scores=True, dpi=72,
        ):  # fmt: skip
            read_when_given.append(body.sent)
            pages.append(page)
    (request,) = requests
    assert request.headers["accept"] == NDJSON and request.headers["authorization"]
    assert request.url.path == "/predictions/ocr/2.0" and request.content == b"%PDF-1.7"
    assert dict(request.url.params) == {"pages": "1-3", "char_scores": "true", "dpi": "72"}
    assert read_when_given == [1, 2, 3]  # page 1 was given before line 2 was read
    assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert [p.number for p in pages] == [1, 2, 3]
    assert [_text(pages[0]), _text(pages[2])] == ["ALPHA", "CHARLIE"]
    assert pages[0].done_at == 2.0 and pages[0].time_ms == 5.0 and pages[0].raw == _page(1, "ALPHA")
    timed_out = pages[1]
    assert type(timed_out.error) is errors.WorkerTimeout and timed_out.result == Result({})
    assert (timed_out.error.status, timed_out.error.message) == (504, "too slow")
    assert body.closed


def test_leaving_early_closes_the_answer() -> None:
    bodies: list[Lines] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(Lines([_page(n, w) for n, w in enumerate(WORDS, 1)]))
        return _streamed(bodies[-1])

    with _client(handler) as client:
        for page in client.predict_pages("ocr", b"%PDF-"):
            assert page.number == 1
            break
        assert bodies[0].closed and bodies[0].sent == 1
        pages = client.predict_pages("ocr", b"%PDF-")
        assert next(pages).number == 1 and not bodies[1].closed
        pages.close()
        assert bodies[1].closed and bodies[1].sent == 1


def test_failures_before_the_first_page_are_retried_never_after() -> None:
    calls: list[str] = []
    answers: list[Callable[[], httpx.Response]] = [
        lambda: httpx.Response(503, json=_error(503, "ServiceUnavailableException", "no worker")),
        lambda: _streamed(Lines([_page(1, "ALPHA")], fail_after=0), count=1),  # reset at once
        lambda: _streamed(Lines([_page(1, "ALPHA")]), count=1),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return answers[len(calls) - 2]()

    with _client(handler) as client:
        client.retry = client.retry.__class__(retries=3, backoff=0)
        assert [p.number for p in client.predict_pages("ocr", b"%PDF-")] == [1]
    assert len(calls) == 4  # refused, 503, reset before any page, the pages

    def broken(request: httpx.Request) -> httpx.Response:
        calls.append("broken")
        return _streamed(Lines([_page(n, w) for n, w in enumerate(WORDS, 1)], fail_after=1))

    calls.clear()
    got: list[int] = []
    with _client(broken) as client, pytest.raises(httpx.ReadError):
        for page in client.predict_pages("ocr", b"%PDF-"):
            got.append(page.number)
    assert got == [1] and calls == ["broken"]

    def missing(request: httpx.Request) -> httpx.Response:
        calls.append("missing")
        return httpx.Response(404, json=_error(404, "ModelNotFoundException", "Model not found: x"))

    calls.clear()
    with _client(missing) as client, pytest.raises(errors.ModelNotFound, match="not found: x"):
        list(client.predict_pages("x", b"%PDF-"))
    assert calls == ["missing"]


def test_a_short_or_garbled_stream_is_an_error() -> None:
    cases = [
        (Lines([_page(1, "ALPHA")]), "ended after 1 of 3 pages"),
        (Lines([_page(1, "ALPHA"), "{not json"]), "not JSON"),
    ]
    for body, message in cases:
        with _client(lambda r, b=body: _streamed(b)) as client:  # type: ignore[misc]
            with pytest.raises(errors.InternalServerError, match=message):
                list(client.predict_pages("ocr", b"%PDF-"))
    # The server could not go on after some pages: its last line is the error.
    failed = _error(507, "InsufficientStorageException", "disk full")
    for last in (failed, {"error": failed}):
        got: list[int] = []
        with _client(lambda r, x=last: _streamed(Lines([_page(1, "A"), x]))) as client:  # type: ignore[misc]
            with pytest.raises(errors.OcrServeError, match="disk full") as info:
                got.extend(p.number for p in client.predict_pages("ocr", b"%PDF-"))
        assert info.value.status == 507 and got == [1]
    internal = {"error": _error(500, "InternalServerException", "worker died")}
    with _client(lambda r: _streamed(Lines([internal]))) as client:
        with pytest.raises(errors.InternalServerError, match="worker died"):
            list(client.predict_pages("ocr", b"%PDF-"))


def test_a_server_that_answers_at_once_gives_the_same_pages() -> None:
    whole = {"pages": [_page(1, "ALPHA"), TIMED_OUT]}
    progress: list[tuple[int, int]] = []
    with _client(lambda r: httpx.Response(200, json=whole)) as client:
        pages = list(client.predict_pages("ocr", b"%PDF-", progress=lambda *a: progress.append(a)))
    assert [p.number for p in pages] == [1, 2] and isinstance(pages[1].error, errors.WorkerTimeout)
    assert progress == [(1, 2), (2, 2)]
    # A single image: its answer (streamed or not) is the one page, of unknown size.
    single = {"text": "serving", "score": 0.99}
    for answer in (_streamed(Lines([single]), count=None), httpx.Response(200, json=single)):
        with _client(lambda r, a=answer: a) as client:  # type: ignore[misc]
            (page,) = client.predict_pages("ppocr_rec", b"png")
        assert page == Page(1, 0, 0, Recognition(single, "serving", 0.99)) and page.raw == single


def test_the_async_client_streams_retries_and_closes() -> None:
    bodies: list[Lines] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if not bodies:
            bodies.append(Lines([]))
            return httpx.Response(503, json=_error(503, "ServiceUnavailableException", "full"))
        bodies.append(Lines([_page(1, "ALPHA"), TIMED_OUT, _page(3, "CHARLIE")]))
        return _streamed(bodies[-1])

    async def run() -> None:
        progress: list[tuple[int, int]] = []
        async with _async_client(handler) as client:
            pages = []
            async for page in client.predict_pages(
                "ocr", b"%PDF-", progress=lambda d, t: progress.append((d, t)), pages="1-3"
            ):
                assert bodies[-1].sent == page.number  # given as its line arrived
                pages.append(page)
            assert [p.number for p in pages] == [1, 2, 3] and _text(pages[2]) == "CHARLIE"
            assert isinstance(pages[1].error, errors.WorkerTimeout)
            assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)] and len(bodies) == 2
            async with contextlib.aclosing(client.predict_pages("ocr", b"%PDF-")) as stream:
                async for _ in stream:
                    break
            assert bodies[-1].closed and bodies[-1].sent == 1
            missing = httpx.Response(404, json=_error(404, "ModelNotFoundException", "not found"))
            async with _async_client(lambda r: missing) as other:
                with pytest.raises(errors.ModelNotFound):
                    async for _ in other.predict_pages("x", b"%PDF-"):
                        pass

    asyncio.run(run())


def test_a_document_result_of_the_streamed_pages() -> None:
    """What ``ocrserve request`` builds from the pages: the same as the answer sent at once."""
    from ocrserve.client import parse_result

    with _client(lambda r: _streamed(Lines([_page(1, "ALPHA"), TIMED_OUT]), 2)) as client:
        pages = list(client.predict_pages("ocr", b"%PDF-"))
    whole = parse_result({"pages": [p.raw for p in pages]})
    assert isinstance(whole, Document) and whole.pages[0] == pages[0]

    def error(page: Page) -> tuple[Any, ...]:
        e = page.error
        return (type(e), e.status, e.type, e.message) if e else ()

    assert [error(p) for p in whole.pages] == [error(p) for p in pages]
