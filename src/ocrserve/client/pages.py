"""Streamed document answers (``Accept: application/x-ndjson``) without I/O: the request's
header, the page count, and each line as a `Page`. Both clients read their stream with it.

The server sends ``X-Page-Count: K`` and then one page entry per line as each page is done
(docs/api.md). A server that does not stream (TorchServe, an older ocrserve) answers the whole
document at once; its pages are given the same way, after the answer came.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ocrserve.client.results import Document, Page, is_page, parse_page, parse_result
from ocrserve.errors import InternalServerError, error_from_answer

if TYPE_CHECKING:
    import httpx

__all__ = ["NDJSON", "PAGE_COUNT", "PageReader", "stream_headers"]

NDJSON = "application/x-ndjson"
#: The header that says how many pages a streamed answer will have.
PAGE_COUNT = "X-Page-Count"

_ERROR_KEYS = frozenset({"code", "type", "message"})


def stream_headers(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` (the key's) with the one that asks for a streamed answer."""
    return {**headers, "Accept": NDJSON}


class PageReader:
    """The pages of one answer, line by line, calling ``progress(done, total)`` once the
    page count is known (``done`` 0) and after each page."""

    def __init__(
        self, response: httpx.Response, progress: Callable[[int, int], None] | None
    ) -> None:
        content_type = response.headers.get("content-type", "")
        self.streamed = response.status_code == 200 and content_type.startswith(NDJSON)
        self.total = _count(response.headers.get(PAGE_COUNT))
        self.done = 0
        self.progress = progress
        if self.streamed and progress is not None and self.total is not None:
            progress(0, self.total)

    def line(self, text: str) -> Page | None:
        """The page a line holds (None for a blank line); a line holding an error answer (the
        server could not go on) raises it, one that is not JSON raises `InternalServerError`."""
        text = text.strip()
        if not text:
            return None
        try:
            raw = json.loads(text)
        except ValueError:
            raise InternalServerError(
                f"the server's streamed answer has a line that is not JSON: {text[:200]!r}"
            ) from None
        error = _stream_error(raw)
        if error is not None:
            code = error["code"]
            raise error_from_answer(code if isinstance(code, int) else 500, error)
        return self._counted(parse_page(raw) if is_page(raw) else _single(raw))

    def finish(self) -> None:
        """After the last line: an answer that ended before its pages did raises."""
        if self.total is not None and self.done < self.total:
            raise InternalServerError(
                f"the server's streamed answer ended after {self.done} of {self.total} pages"
            )

    def answer(self, body: Any) -> Iterator[Page]:
        """The pages of an answer sent at once: a document's, or one for a single image."""
        result = parse_result(body)
        pages = result.pages if isinstance(result, Document) else [_single(body)]
        self.total = len(pages)
        for page in pages:
            yield self._counted(page)

    def _counted(self, page: Page) -> Page:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, max(self.done, self.total or 0))
        return page


def _stream_error(raw: Any) -> dict[str, Any] | None:
    """The error JSON of a line that ends a stream with a failure: ``{"error": {...}}`` (after
    some pages, when the server could not go on), or a bare ``{"code", "type", "message"}``."""
    if not isinstance(raw, dict) or "page" in raw:
        return None
    if set(raw) == {"error"} and isinstance(raw["error"], dict):
        raw = raw["error"]
    return raw if set(raw) == _ERROR_KEYS else None


def _single(raw: Any) -> Page:
    """A single image's answer as a document's only page (its size is not sent: 0 x 0)."""
    return Page(1, 0, 0, parse_result(raw), raw=raw)


def _count(value: str | None) -> int | None:
    try:
        count = int(value) if value is not None else None
    except ValueError:
        return None
    return count if count is not None and count >= 0 else None
