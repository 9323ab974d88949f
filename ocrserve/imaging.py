"""Turning request bytes into images, safely.

`probe` reads only an image's header (cheap, used by the HTTP layer to reject bad input
before it is queued); `decode` does the full decode in a worker. Both enforce the decoded
pixel cap, so a small file that claims 50000 x 50000 pixels never gets decoded.

`decode_input` (workers) also takes documents: a PDF (rendered with PDFium, imported only
here and only for a PDF) or a multi-page TIFF becomes a list of page images. Their page count
and every page's size are checked against `InputLimits` before any page is rendered.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ocrserve.errors import InvalidInput, OcrServeError, PayloadTooLarge
from ocrserve.settings import InputLimits

__all__ = [
    "PDF_MAGIC",
    "Document",
    "ImageInfo",
    "decode",
    "decode_base64",
    "decode_input",
    "is_pdf",
    "lookup_channels",
    "pdf_script",
    "maybe_base64",
    "probe",
    "render_pdf",
    "shrink_to",
    "unshrink_boundaries",
]

# We enforce our own cap (max_image_pixels) before decoding; Pillow's own warning/limit
# would otherwise fire first with a less useful message.
Image.MAX_IMAGE_PIXELS = None

#: The formats a request may carry (Pillow plugins); everything else is refused unread.
FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF")
_B64_RE = re.compile(rb"^[A-Za-z0-9+/=_\-\s]+$")
_DATA_URI_RE = re.compile(rb"^data:[\w/+.-]*;base64,")
#: How a PDF starts (the header PDFium and every reader look for).
PDF_MAGIC = b"%PDF-"
_POINTS_PER_INCH = 72.0


@dataclass(frozen=True)
class ImageInfo:
    """What the header of an image says (a PDF: format "PDF", no size: pages are read later)."""

    format: str
    width: int
    height: int
    mode: str


def is_pdf(data: bytes) -> bool:
    """Whether the bytes are a PDF (they start with ``%PDF-``)."""
    return data[: len(PDF_MAGIC)] == PDF_MAGIC


def decode_base64(text: bytes) -> bytes:
    """Decode base64 text (standard or URL-safe alphabet, padding optional, a ``data:`` URI too)."""
    text = text.strip()
    uri = _DATA_URI_RE.match(text[:64])
    if uri:
        text = text[uri.end() :]
    text = b"".join(text.split())
    try:
        if b"-" in text or b"_" in text:
            return base64.b64decode(text + b"=" * (-len(text) % 4), altchars=b"-_", validate=True)
        return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"Request body is not valid base64: {exc}") from exc


def maybe_base64(body: bytes) -> bytes:
    """Return the image bytes of a raw body that may be base64 text (MMOCR's handler took it).

    A body that is an image already is returned unchanged. A ``data:`` URI or a body made only
    of base64 characters is decoded; one that looks like base64 but is not valid raises
    `InvalidInput`.
    """
    head = body[:64].lstrip()
    if _DATA_URI_RE.match(head) or (len(body.strip()) >= 8 and _B64_RE.match(body[:4096])):
        return decode_base64(body)
    return body


def _open(data: bytes) -> Image.Image:
    if not data:
        raise InvalidInput("Request body is empty: send an image (raw bytes, multipart or base64).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Only raster formats: never hand a client's EPS/PDF to Ghostscript and friends.
            return Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError as exc:
        raise InvalidInput(
            "Request body is not a supported image (JPEG, PNG, BMP, TIFF, WebP, GIF)."
        ) from exc
    except Exception as exc:  # Pillow raises many kinds on hostile headers
        raise InvalidInput(f"Cannot read the image header: {exc}") from exc


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise InvalidInput(f"Image has no pixels ({width} x {height}).")
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"Image of {width} x {height} pixels exceeds max_image_pixels ({max_pixels})."
        )


def probe(data: bytes, max_pixels: int) -> ImageInfo:
    """Read the header only; raise `InvalidInput` / `PayloadTooLarge` for unusable input.

    A PDF is only recognized here: its pages are counted and measured in the worker.
    """
    if is_pdf(data):
        return ImageInfo("PDF", 0, 0, "")
    img = _open(data)
    width, height = img.size
    _check_pixels(width, height, max_pixels)
    return ImageInfo(str(img.format), width, height, img.mode)


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr8 = np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr8 = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def decode(data: bytes, max_pixels: int, *, exif_orientation: bool = True) -> np.ndarray:
    """Decode to an ``H x W x 3`` uint8 BGR array (OpenCV's order, as OCR models expect).

    Alpha is composited onto white, 16-bit images are scaled to 8 bits, palettes and
    CMYK are converted, and only the first frame of an animation is used. With
    ``exif_orientation`` the EXIF rotation is applied, as ``cv2.imread`` does.
    """
    return _decode_frame(_open(data), max_pixels, exif_orientation, in_place=True)


class Document(list[Any]):
    """The pages of a PDF or multi-page TIFF (BGR arrays), with their page numbers (from 1)."""

    def __init__(self, pages: Sequence[np.ndarray], numbers: Sequence[int]) -> None:
        super().__init__(pages)
        self.numbers = list(numbers)


def decode_input(
    data: bytes,
    limits: InputLimits,
    *,
    exif_orientation: bool = True,
    pages: Sequence[tuple[int, int]] | None = None,
) -> np.ndarray | Document:
    """An image as `decode` does, or the pages of a PDF or multi-page TIFF as a `Document`.

    ``pages`` selects a document's pages (ranges from 1, both ends included: the ``pages``
    request option); `max_pages` and the pixel caps apply to the pages selected.
    """
    if is_pdf(data):
        return render_pdf(data, limits, pages)
    img = _open(data)
    if img.format == "TIFF":
        try:
            frames = int(getattr(img, "n_frames", 1))
        except Exception as exc:  # a broken chain of pages
            raise InvalidInput(f"Cannot read the pages of the TIFF: {exc}") from exc
        if frames > 1 or pages:
            return _tiff_pages(img, frames, limits, exif_orientation, pages)
    return _decode_frame(img, limits.max_pixels, exif_orientation, in_place=True)


def _select(count: int, pages: Sequence[tuple[int, int]] | None, kind: str) -> list[int]:
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


def _decode_frame(
    img: Image.Image, max_pixels: int, exif_orientation: bool, *, in_place: bool
) -> np.ndarray:
    _check_pixels(img.width, img.height, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            if exif_orientation and in_place:
                ImageOps.exif_transpose(img, in_place=True)  # no copy when nothing rotates
            elif exif_orientation:  # a page of a TIFF: leave the sequence as it is
                img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
    except Exception as exc:  # Pillow raises many kinds on hostile files (TypeError on TIFF tags)
        raise InvalidInput(f"Cannot decode the image ({img.format}): {exc}") from exc
    arr = np.asarray(rgb, dtype=np.uint8)
    import cv2  # only workers decode; the HTTP process never imports OpenCV

    return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)  # about 2x faster than a reversed copy


def _check_pages(count: int, limits: InputLimits, kind: str) -> None:
    if count < 1:
        raise InvalidInput(f"The {kind} has no pages.")
    if count > limits.max_pages:
        raise PayloadTooLarge(
            f"The {kind} has {count} pages, over max_pdf_pages ({limits.max_pages})."
        )


def _tiff_pages(
    img: Image.Image,
    frames: int,
    limits: InputLimits,
    exif_orientation: bool,
    pages: Sequence[tuple[int, int]] | None = None,
) -> Document:
    selected = _select(frames, pages, "TIFF")
    _check_pages(len(selected), limits, "TIFF")
    sizes = []
    for k in selected:  # every page's size from its header before any is decoded
        try:
            img.seek(k)
        except Exception as exc:
            raise InvalidInput(f"Cannot read page {k + 1} of the TIFF: {exc}") from exc
        try:
            _check_pixels(img.width, img.height, limits.max_pixels)
        except OcrServeError as exc:
            exc.message = f"Page {k + 1}: {exc.message}"
            raise
        sizes.append(img.width * img.height)
    _check_total_pixels(sizes, limits, "TIFF")
    out = []
    for k in selected:
        img.seek(k)
        try:
            out.append(_decode_frame(img, limits.max_pixels, exif_orientation, in_place=False))
        except OcrServeError as exc:
            exc.message = f"Page {k + 1}: {exc.message}"
            raise
    return Document(out, [k + 1 for k in selected])


def render_pdf(
    data: bytes, limits: InputLimits, pages: Sequence[tuple[int, int]] | None = None
) -> Document:
    """Every page of a PDF (or those ``pages`` selects) as a BGR array at ``limits.dpi``.

    The page count and each page's size in points are read from the document first, so a PDF
    over `max_pages`, or with a page over `max_pixels` at that resolution, renders nothing; all
    pages together may take `render_timeout` seconds, enforced inside a page too.
    PDFium's form and JavaScript environment is never initialised (no ``init_forms``), and
    this PDFium build has no JavaScript engine: a document's scripts are never run.
    """
    import pypdfium2 as pdfium  # only workers render, and only for a PDF

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
        selected = _select(len(doc), pages, "PDF")
        _check_pages(len(selected), limits, "PDF")
        scale = limits.dpi / _POINTS_PER_INCH
        sizes = [_check_page_size(doc, i, scale, limits) for i in selected]
        _check_total_pixels(sizes, limits, "PDF")
        deadline = time.monotonic() + limits.render_timeout
        rendered = [_render_page(doc, i, scale, deadline, limits) for i in selected]
        return Document(rendered, [i + 1 for i in selected])
    except pdfium.PdfiumError as exc:
        raise InvalidInput(f"Cannot read the PDF: {exc}") from exc
    finally:
        doc.close()


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


def _check_total_pixels(sizes: list[int], limits: InputLimits, kind: str) -> None:
    total = sum(sizes)
    if total > limits.max_total_pixels:
        raise PayloadTooLarge(
            f"The {kind}'s {len(sizes)} pages have {total} pixels in all, over max_pdf_pixels "
            f"({limits.max_total_pixels})."
        )


def _check_page_size(doc: Any, index: int, scale: float, limits: InputLimits) -> int:
    """The page's pixels at ``scale``, read from its size in points; refused over the cap."""
    width_pt, height_pt = doc.get_page_size(index)
    if not (math.isfinite(width_pt) and math.isfinite(height_pt)):
        raise InvalidInput(f"Page {index + 1} of the PDF has no valid size.")
    width, height = math.ceil(width_pt * scale), math.ceil(height_pt * scale)
    try:
        _check_pixels(width, height, limits.max_pixels)
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
        _check_pixels(width, height, limits.max_pixels)  # as measured before, from the page
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
                f"Rendering the PDF took over pdf_render_timeout ({limits.render_timeout:g} s); "
                f"stopped in page {index + 1} of {len(doc)}."
            )
        if status != pdfium_c.FPDF_RENDER_DONE:
            raise InvalidInput(f"Cannot render page {index + 1} of the PDF.")
        return np.array(bitmap.to_numpy(), dtype=np.uint8, copy=True)
    finally:
        if bitmap is not None:
            bitmap.close()
        page.close()


def shrink_to(img: np.ndarray, max_side: int | None) -> np.ndarray:
    """``img`` scaled down (area interpolation) so that its longer side is at most ``max_side``
    (the image itself when it already fits or ``max_side`` is None)."""
    h, w = img.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return img
    import cv2

    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def lookup_channels(img: np.ndarray, table: np.ndarray, *, planar: bool) -> np.ndarray:
    """``table[img[y, x, c], c]`` for every pixel and channel of a uint8 image (H x W x C, or
    H x W: one channel), through OpenCV's ``LUT``. Per-channel normalisation of a uint8 image
    is a function of 256 values: ``table`` (256 x C, float32) holds what the per-pixel float
    arithmetic gives for each, so the result is bit-identical to it, 6-8x faster on a
    megapixel page. ``planar``: the result is C x H x W, else H x W x C."""
    import cv2

    planes = img[:, :, None] if img.ndim == 2 else img
    h, w, channels = planes.shape
    if img.dtype != np.uint8 or table.shape != (256, channels):
        raise ValueError(f"lookup_channels: uint8 image and 256 x {channels} table expected")
    out = np.empty((channels, h, w) if planar else (h, w, channels), np.float32)
    for c in range(channels):
        column = np.ascontiguousarray(table[:, c], dtype=np.float32)
        plane = np.ascontiguousarray(planes[:, :, c])
        if planar:
            cv2.LUT(plane, column, dst=out[c])
        else:
            out[:, :, c] = cv2.LUT(plane, column).reshape(h, w)
    return out


def unshrink_boundaries(
    boundaries: list[list[float]], shrunk: np.ndarray, original: np.ndarray
) -> list[list[float]]:
    """``[x1, y1, ..., score]`` boundaries found on ``shrunk`` in ``original``'s pixels."""
    if shrunk is original:
        return boundaries
    fx = original.shape[1] / shrunk.shape[1]
    fy = original.shape[0] / shrunk.shape[0]
    out = []
    for b in boundaries:
        coords = [float(v) * (fx if k % 2 == 0 else fy) for k, v in enumerate(b[:-1])]
        out.append([*coords, b[-1]])
    return out
