"""PDFs read page by page with PDFium (pypdfium2), imported only in workers, only for a PDF.

`open_pdf` reads the page count and each selected page's size in points before any page is
drawn, and refuses a document that carries JavaScript unless ``pdf_allow_javascript`` is on;
`PdfPages.render` draws one page progressively, so PDFium stops at ``pdf_render_timeout``
even inside a page. PDFium's form and JavaScript environment is never initialised (no
``init_forms``), and this PDFium build has no JavaScript engine: a document's scripts are
never run.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ocrserve.documents.source import (
    PageSource,
    check_page_count,
    check_total_pixels,
    select_pages,
)
from ocrserve.errors import InvalidInput, OcrServeError, PayloadTooLarge
from ocrserve.imaging import check_pixels
from ocrserve.settings import InputLimits

__all__ = ["PdfPages", "open_pdf", "pdf_script"]

POINTS_PER_INCH = 72.0


class PdfPages(PageSource):
    """The selected pages of a PDF at ``limits.dpi``; ``doc`` is the open PDFium document and
    ``scale`` its pixels per point (for readers of the text layer)."""

    kind = "PDF"

    def __init__(self, doc: Any, selected: list[int], limits: InputLimits) -> None:
        super().__init__([i + 1 for i in selected])
        self.doc, self._limits = doc, limits
        self.scale = limits.dpi / POINTS_PER_INCH

    def size(self, k: int) -> tuple[int, int]:
        """The k-th selected page's ``(width, height)`` in pixels, without rendering it."""
        width_pt, height_pt = self.doc.get_page_size(self.numbers[k] - 1)
        return math.ceil(width_pt * self.scale), math.ceil(height_pt * self.scale)

    def render(self, k: int) -> np.ndarray:
        import pypdfium2 as pdfium

        deadline = time.monotonic() + self._limits.render_timeout
        try:
            return _render_page(self.doc, self.numbers[k] - 1, self.scale, deadline, self._limits)
        except pdfium.PdfiumError as exc:
            raise InvalidInput(f"Cannot read page {self.numbers[k]} of the PDF: {exc}") from exc

    def close(self) -> None:
        if self.doc is not None:
            self.doc.close()
            self.doc = None


def open_pdf(
    data: bytes, limits: InputLimits, pages: Sequence[tuple[int, int]] | None = None
) -> PdfPages:
    """The PDF's selected pages (all by default), checked against ``limits``; nothing drawn."""
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise InvalidInput("The PDF is encrypted with a password: send it decrypted.") from exc
        raise InvalidInput(f"Cannot read the PDF: {exc}") from exc
    try:
        if doc.formenv is not None:  # never: scripts run only in a form environment
            doc.close_forms()
        if not limits.allow_javascript:
            script = pdf_script(data, doc)
            if script:
                raise InvalidInput(
                    f"The PDF carries JavaScript ({script}); ocrserve does not read such "
                    "documents (pdf_allow_javascript is off). Send it without its scripts."
                )
        selected = select_pages(len(doc), pages, "PDF")
        check_page_count(len(selected), limits, "PDF")
        scale = limits.dpi / POINTS_PER_INCH
        sizes = [_check_page_size(doc, i, scale, limits) for i in selected]
        check_total_pixels(sizes, limits, "PDF")
        return PdfPages(doc, selected, limits)
    except pdfium.PdfiumError as exc:
        doc.close()
        raise InvalidInput(f"Cannot read the PDF: {exc}") from exc
    except BaseException:
        doc.close()
        raise


#: A PDF name token (``/Name``); ``#xx`` escapes are decoded before names are compared.
_PDF_NAME = re.compile(rb"/([^\s/<>\[\]()%{}\x00]+)")
_PDF_HEX = re.compile(rb"#([0-9A-Fa-f]{2})")
_PDF_STREAM = re.compile(rb"(?<!end)stream\r?\n")
_PDF_OBJ = re.compile(rb"\bobj\b")
#: Keys under which a PDF keeps JavaScript: an action's script (/JS) and the type of a
#: JavaScript action or the document's named scripts (/JavaScript).
_SCRIPT_NAMES = frozenset({b"JS", b"JavaScript"})
#: Most bytes inflated from object streams while looking for scripts, per document.
_OBJSTM_BUDGET = 32 * 1024 * 1024


def _pdf_names(data: bytes) -> set[bytes]:
    return {_PDF_HEX.sub(lambda h: bytes([int(h[1], 16)]), m[1]) for m in _PDF_NAME.finditer(data)}


def _outside_streams(data: bytes) -> bytes:
    """The file without its streams' contents (page content, images, fonts): the objects'
    dictionaries, where actions live, and no binary data that could look like a name."""
    parts, pos = [], 0
    for m in _PDF_STREAM.finditer(data):
        if m.start() < pos:
            continue
        end = data.find(b"endstream", m.end())
        parts.append(data[pos : m.start()])
        pos = len(data) if end < 0 else end
    parts.append(data[pos:])
    return b" ".join(parts)


def _object_streams(data: bytes) -> list[bytes]:
    """The inflated contents of the file's Flate-compressed object streams (/Type /ObjStm),
    where dictionaries may live out of sight of a scan of the file's bytes; at most
    `_OBJSTM_BUDGET` bytes in all, streams that do not inflate are left out."""
    import zlib

    out, budget = [], _OBJSTM_BUDGET
    for m in _PDF_STREAM.finditer(data):
        objs = list(_PDF_OBJ.finditer(data, max(0, m.start() - 4096), m.start()))
        head = data[objs[-1].end() if objs else max(0, m.start() - 4096) : m.start()]
        if b"ObjStm" not in _pdf_names(head) or budget <= 0:
            continue
        try:
            inflated = zlib.decompressobj().decompress(data[m.end() :], budget)
        except zlib.error:
            continue
        budget -= len(inflated)
        out.append(inflated)
    return out


def pdf_script(data: bytes, doc: Any) -> str | None:
    """Where a PDF carries JavaScript, else None: the document-level scripts PDFium counts,
    or a /JS or /JavaScript name in the file's dictionaries (also inside Flate object
    streams). Scripts hidden where this does not look (encrypted object streams, other
    filters) are still never run: no form environment, no JavaScript engine in this PDFium."""
    import pypdfium2.raw as pdfium_c

    count = pdfium_c.FPDFDoc_GetJavaScriptActionCount(doc.raw)
    if count > 0:
        return f"{count} document-level script(s)"
    chunks = [("the file", _outside_streams(data))]
    chunks += [("an object stream", stream) for stream in _object_streams(data)]
    for where, chunk in chunks:
        found = _SCRIPT_NAMES & _pdf_names(chunk)
        if found:
            names = ", ".join(f"/{n.decode()}" for n in sorted(found))
            return f"{names} in {where}"
    return None


def _check_page_size(doc: Any, index: int, scale: float, limits: InputLimits) -> int:
    """The page's pixels at ``scale``, read from its size in points; refused over the cap."""
    width_pt, height_pt = doc.get_page_size(index)
    if not (math.isfinite(width_pt) and math.isfinite(height_pt)):
        raise InvalidInput(f"Page {index + 1} of the PDF has no valid size.")
    width, height = math.ceil(width_pt * scale), math.ceil(height_pt * scale)
    try:
        check_pixels(width, height, limits.max_pixels)
    except OcrServeError as exc:
        exc.message = (
            f"Page {index + 1} of the PDF ({width_pt:g} x {height_pt:g} points at pdf_dpi "
            f"{limits.dpi}): {exc.message}"
        )
        raise
    return width * height


def _render_page(
    doc: Any, index: int, scale: float, deadline: float, limits: InputLimits
) -> np.ndarray:
    """One page, rendered progressively so that PDFium stops at ``deadline`` even inside a page
    (it asks whether to pause between the page's objects)."""
    import pypdfium2 as pdfium
    import pypdfium2.internal as pdfium_i
    import pypdfium2.raw as pdfium_c

    page = doc[index]
    bitmap = None
    try:
        width = math.ceil(page.get_width() * scale)
        height = math.ceil(page.get_height() * scale)
        check_pixels(width, height, limits.max_pixels)  # as measured before, from the page
        bitmap = pdfium.PdfBitmap.new_native(width, height, format=pdfium_c.FPDFBitmap_BGR)
        bitmap.fill_rect((255, 255, 255, 255), 0, 0, width, height)  # BGR, as the models expect
        pause = pdfium_c.IFSDK_PAUSE(version=1)
        pdfium_i.set_callback(pause, "NeedToPauseNow", lambda _: time.monotonic() > deadline)
        status = pdfium_c.FPDF_RenderPageBitmap_Start(
            bitmap, page, 0, 0, width, height, 0, pdfium_c.FPDF_ANNOT, pause
        )
        while status == pdfium_c.FPDF_RENDER_TOBECONTINUED and time.monotonic() <= deadline:
            status = pdfium_c.FPDF_RenderPage_Continue(page, pause)
        pdfium_c.FPDF_RenderPage_Close(page)
        if status == pdfium_c.FPDF_RENDER_TOBECONTINUED:
            raise PayloadTooLarge(
                f"Rendering a page of the PDF took over pdf_render_timeout "
                f"({limits.render_timeout:g} s); stopped in page {index + 1} of {len(doc)}."
            )
        if status != pdfium_c.FPDF_RENDER_DONE:
            raise InvalidInput(f"Cannot render page {index + 1} of the PDF.")
        return np.array(bitmap.to_numpy(), dtype=np.uint8, copy=True)
    finally:
        if bitmap is not None:
            bitmap.close()
        page.close()
