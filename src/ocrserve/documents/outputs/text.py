"""Plain text: the lines in reading order, one a line, a blank line between blocks, a form
feed between pages (as ``pdftotext`` writes), UTF-8."""

from __future__ import annotations

from collections.abc import Sequence

from ocrserve.documents.outputs.layout import Page, blocks

__all__ = ["MEDIA_TYPE", "page_text", "write_text"]

MEDIA_TYPE = "text/plain; charset=utf-8"


def page_text(page: Page) -> str:
    """One page's text: its blocks' lines, the blocks apart by a blank line."""
    return "\n\n".join("\n".join(line.text for line in b.lines) for b in blocks(page.lines))


def write_text(pages: Sequence[Page]) -> bytes:
    """The pages' text, a form feed (``\\f``) between two pages, ending with a newline."""
    text = "\n\f".join(page_text(page) for page in pages)
    return (text + "\n").encode("utf-8")
