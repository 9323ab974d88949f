"""Output writers: an end-to-end answer as plain text, hOCR, ALTO XML, or the searchable PDF.

`render` turns an answer (an image's ``{"result": [...]}`` or a document's ``{"pages":
[...]}``) into the bytes of one format; `format_for_accept` picks a format from an HTTP
``Accept`` header. Nothing here imports a model library; the PDF writer imports pikepdf only
when called.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ocrserve.documents.outputs.alto import write_alto
from ocrserve.documents.outputs.hocr import write_hocr
from ocrserve.documents.outputs.layout import Page, pages_of
from ocrserve.documents.outputs.searchable_pdf import add_text_layer, text_only_pdf
from ocrserve.documents.outputs.text import write_text
from ocrserve.errors import InvalidInput

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "Page",
    "Rendered",
    "add_text_layer",
    "check_format",
    "format_for_accept",
    "image_size",
    "pages_of",
    "render",
    "text_only_pdf",
    "write_alto",
    "write_hocr",
    "write_text",
]

#: The ``format`` option's values; ``json`` is the answer as it is.
FORMATS = ("json", "text", "hocr", "alto", "pdf")
#: Each format's Content-Type.
MEDIA_TYPES = {
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
    "hocr": "text/html; charset=utf-8",
    "alto": "application/alto+xml",
    "pdf": "application/pdf",
}
#: ``Accept`` media types that choose a format (not ``text/html``: a browser asks for it first,
#: and gets JSON as every other client does).
ACCEPTED = {
    "text/plain": "text",
    "text/vnd.hocr+html": "hocr",
    "application/alto+xml": "alto",
    "application/pdf": "pdf",
}
#: EXIF orientations that turn the image a quarter (width and height swap).
_QUARTER_TURNS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class Rendered:
    """An answer in one format: its bytes, Content-Type, and the pages that failed (their
    numbers; they are empty in the output)."""

    body: bytes
    media_type: str
    failed_pages: tuple[int, ...] = ()


def format_for_accept(accept: str) -> str | None:
    """The format an ``Accept`` header asks for: its most preferred media type (highest q,
    first among equals) when that is one of `ACCEPTED`; else None (JSON)."""
    best: tuple[float, int, str] | None = None
    for i, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media and q > 0 and (best is None or q > best[0]):
            best = (q, i, media.lower())
    return ACCEPTED.get(best[2]) if best else None


def check_format(fmt: str, source_format: str, options: Mapping[str, Any]) -> None:
    """`InvalidInput` (400, before any work) for a format the request cannot have: ``pdf`` for
    input that is not a PDF (``source_format`` as `ocrserve.imaging.probe` names it), and any
    format but ``json`` for a ``detect_only`` request (its lines have no text)."""
    if fmt == "pdf" and source_format != "PDF":
        raise InvalidInput(
            f"format=pdf needs a PDF (this is {source_format or 'not a PDF'}): it answers the PDF "
            "sent with a text layer added. Use format=hocr or alto for images and TIFFs."
        )
    if fmt != "json" and options.get("detect_only"):
        raise InvalidInput(f"format={fmt} needs text: detect_only answers have none.")


def image_size(data: bytes) -> tuple[int, int]:
    """An image's ``(width, height)`` as the model sees it (EXIF orientation applied), read from
    its header; ``(0, 0)`` when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if img.getexif().get(0x0112) in _QUARTER_TURNS:
                width, height = height, width
    except Exception:  # the model read it; a header Pillow cannot is no reason to fail here
        return 0, 0
    return width, height


def render(
    fmt: str,
    answer: Mapping[str, Any],
    source: bytes,
    *,
    dpi: float | None = None,
    name: str = "",
) -> Rendered:
    """``answer`` as ``fmt`` (not ``json``). ``source`` is the request's image or PDF (the PDF
    output is that PDF with a text layer; an image's answer takes its size from it); ``dpi``
    the resolution PDF pages were rendered at; ``name`` names the source in hOCR and ALTO."""
    document = isinstance(answer.get("pages"), list)
    size = (0, 0) if document else image_size(source)
    pages = pages_of(answer, size)
    failed = tuple(page.number for page in pages if page.error)
    if fmt == "text":
        body = write_text(pages)
    elif fmt == "hocr":
        body = write_hocr(pages, dpi if document else None, name)
    elif fmt == "alto":
        body = write_alto(pages, name)
    elif fmt == "pdf":
        if not document or not source.startswith(b"%PDF-"):
            raise InvalidInput("format=pdf needs a PDF: it answers the PDF sent, made searchable.")
        body = add_text_layer(source, pages, dpi)
    else:
        raise InvalidInput(f"Unknown format {fmt!r} (formats: {', '.join(FORMATS)}).")
    return Rendered(body, MEDIA_TYPES[fmt], failed)
