"""What every document reader shares: `PageSource` (pages rendered on demand) and the checks
made before any page is drawn (which pages, how many, how many pixels in all)."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

import numpy as np

from ocrserve.errors import InvalidInput, PayloadTooLarge
from ocrserve.settings import InputLimits

__all__ = ["PageSource", "check_page_count", "check_total_pixels", "select_pages"]


class PageSource:
    """The selected pages of one document, rendered on demand (``render(k)`` for the k-th
    selected page, from 0); ``numbers`` are their page numbers, from 1. Close it (or use it
    as a context manager) to free the document."""

    kind = "document"

    def __init__(self, numbers: Sequence[int]) -> None:
        self.numbers = list(numbers)

    def render(self, k: int) -> np.ndarray:
        """The k-th selected page as an ``H x W x 3`` uint8 BGR array."""
        raise NotImplementedError

    def size(self, k: int) -> tuple[int, int]:
        """The k-th selected page's ``(width, height)`` in pixels, read without rendering it
        (``(0, 0)`` where it cannot be read)."""
        return (0, 0)

    def close(self) -> None:
        """Free the document."""

    def __enter__(self) -> PageSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()


def select_pages(count: int, pages: Sequence[tuple[int, int]] | None, kind: str) -> list[int]:
    """The 0-based indexes of the selected pages, in order, each once."""
    if count < 1:
        raise InvalidInput(f"The {kind} has no pages.")
    if not pages:
        return list(range(count))
    last = max(b for _, b in pages)
    if last > count:
        raise InvalidInput(
            f"Option 'pages' asks for page {last} but the {kind} has {count} page(s)."
        )
    return sorted({i - 1 for a, b in pages for i in range(a, b + 1)})


def check_page_count(count: int, limits: InputLimits, kind: str) -> None:
    """`PayloadTooLarge` for more selected pages than ``max_pdf_pages``."""
    if count < 1:
        raise InvalidInput(f"The {kind} has no pages.")
    if count > limits.max_pages:
        raise PayloadTooLarge(
            f"The {kind} has {count} pages, over max_pdf_pages ({limits.max_pages})."
        )


def check_total_pixels(sizes: list[int], limits: InputLimits, kind: str) -> None:
    """`PayloadTooLarge` when the selected pages have more pixels in all than the cap."""
    total = sum(sizes)
    if total > limits.max_total_pixels:
        raise PayloadTooLarge(
            f"The {kind}'s {len(sizes)} pages have {total} pixels in all, over max_pdf_pixels "
            f"({limits.max_total_pixels})."
        )
