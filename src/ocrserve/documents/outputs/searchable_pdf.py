"""Searchable PDFs: the original PDF with an invisible, selectable text layer over each line
read, its pages otherwise untouched (never rasterised); and text-only pages (a layer on a
blank page of an image's size, what OCRmyPDF grafts onto its pages).

Each word is drawn in text render mode 3 (invisible) in the glyph-less font
(`ocrserve.documents.outputs.glyphless`): its size is the word box's height, its horizontal
scaling (``Tz``) makes its characters span the box's length, and its text matrix turns it
along the line, so selection, search and ``pdftotext -bbox`` find each word where the page
shows it. Boxes come in the pixels the page was rendered at (``dpi``); they are mapped back
through the page's CropBox and ``/Rotate`` as PDFium drew it. Pages answered from the PDF's own
text layer (``"source": "text_layer"``) already have text and get nothing; neither do pages
that failed. The original content is wrapped in ``q``/``Q`` so that its graphics state cannot
move the layer; every stream of the original is written back byte for byte (no stream is
decoded or recompressed).

pikepdf (qpdf) is imported inside the functions: only a ``format=pdf`` answer needs it.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ocrserve.documents.outputs.glyphless import (
    ADVANCE,
    DESCENT,
    FONT_NAME,
    UNITS,
    cid_to_gid_map,
    glyphless_ttf,
    to_unicode,
)
from ocrserve.documents.outputs.layout import Page, Point, words
from ocrserve.errors import InvalidInput

if TYPE_CHECKING:
    import pikepdf

__all__ = ["MEDIA_TYPE", "POINTS_PER_INCH", "add_text_layer", "text_only_pdf"]

MEDIA_TYPE = "application/pdf"
POINTS_PER_INCH = 72.0
#: The font's resource name on the pages (another name if the page already uses it).
FONT_RESOURCE = "OcrServeText"
#: The font's name on a text-only page: one of the two OCRmyPDF's sandwich renderer grafts.
TEXT_ONLY_FONT = "F1"


class _Frame:
    """Rendered pixels (origin top-left, y down) -> the page's default user space (points)."""

    def __init__(self, box: Sequence[float], rotate: int, scale: float) -> None:
        self.left, self.bottom, self.right, self.top = box
        self.rotate, self.scale = rotate % 360, scale

    def __call__(self, p: Point) -> Point:
        u, v = p[0] / self.scale, p[1] / self.scale
        if self.rotate == 90:
            return self.left + v, self.bottom + u
        if self.rotate == 180:
            return self.right - u, self.bottom + v
        if self.rotate == 270:
            return self.right - v, self.top - u
        return self.left + u, self.top - v


def _codes(text: str, cids: dict[str, int]) -> str:
    return "".join(f"{cids.setdefault(ch, len(cids) + 1):04X}" for ch in text)


def _n(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def _layer(page: Page, frame: _Frame, font: str, cids: dict[str, int]) -> bytes:
    """The page's text operators, in the page's user space."""
    ops = ["BT", "3 Tr"]
    for line in page.lines:
        if line.source == "text_layer":
            continue
        line_words = words(line)
        for k, word in enumerate(line_words):
            tl, _, br, bl = (frame(p) for p in word.quad)
            ex, ey = br[0] - bl[0], br[1] - bl[1]
            length = math.hypot(ex, ey)
            if length <= 0:
                continue
            ex, ey = ex / length, ey / length
            nx, ny = -ey, ex  # the text's "up", a quarter turn anticlockwise from its run
            size = (tl[0] - bl[0]) * nx + (tl[1] - bl[1]) * ny
            if size <= 0:
                continue
            rise = -DESCENT / UNITS * size  # the baseline sits above the box's bottom
            ox, oy = bl[0] + nx * rise, bl[1] + ny * rise
            scaling = 100 * length / (len(word.text) * ADVANCE / UNITS * size)
            text = word.text + (" " if k < len(line_words) - 1 else "")
            ops.append(
                f"/{font} {_n(size)} Tf {_n(scaling)} Tz "
                f"{_n(ex)} {_n(ey)} {_n(nx)} {_n(ny)} {_n(ox)} {_n(oy)} Tm "
                f"<{_codes(text, cids)}> Tj"
            )
    ops.append("ET")
    return ("\n".join(ops) + "\n").encode("ascii")


def _font(pdf: pikepdf.Pdf, cids: dict[str, int]) -> pikepdf.Object:
    """The Type0 glyph-less font covering ``cids``."""
    from pikepdf import Array, Dictionary, Name, Stream

    chars = sorted(cids, key=cids.__getitem__)
    font_file = Stream(pdf, zlib.compress(glyphless_ttf()), Filter=Name.FlateDecode)
    descriptor = Dictionary(
        Type=Name.FontDescriptor, FontName=Name("/" + FONT_NAME), Flags=5,
        FontBBox=Array([0, DESCENT, ADVANCE, UNITS + DESCENT]), ItalicAngle=0,
        Ascent=UNITS + DESCENT, Descent=DESCENT, CapHeight=UNITS + DESCENT, StemV=80,
        FontFile2=pdf.make_indirect(font_file),
    )  # fmt: skip
    cid_font = Dictionary(
        Type=Name.Font, Subtype=Name.CIDFontType2, BaseFont=Name("/" + FONT_NAME),
        CIDSystemInfo=Dictionary(Registry="Adobe", Ordering="Identity", Supplement=0),
        FontDescriptor=pdf.make_indirect(descriptor), DW=ADVANCE,
        CIDToGIDMap=pdf.make_indirect(
            Stream(pdf, cid_to_gid_map(len(chars)), Filter=Name.FlateDecode)
        ),
    )  # fmt: skip
    unicode = Stream(pdf, zlib.compress(to_unicode(chars)), Filter=Name.FlateDecode)
    font = Dictionary(
        Type=Name.Font, Subtype=Name.Type0, BaseFont=Name("/" + FONT_NAME),
        Encoding=Name("/Identity-H"), DescendantFonts=Array([pdf.make_indirect(cid_font)]),
        ToUnicode=pdf.make_indirect(unicode),
    )  # fmt: skip
    return pdf.make_indirect(font)


def _box(page: pikepdf.Page) -> list[float]:
    """The page's CropBox within its MediaBox (what PDFium renders), normalised."""
    media = [float(v) for v in page.mediabox]
    crop = [float(v) for v in page.cropbox]
    mx0, my0, mx1, my1 = min(media[0::2]), min(media[1::2]), max(media[0::2]), max(media[1::2])
    cx0, cy0, cx1, cy1 = min(crop[0::2]), min(crop[1::2]), max(crop[0::2]), max(crop[1::2])
    box = [max(mx0, cx0), max(my0, cy0), min(mx1, cx1), min(my1, cy1)]
    return box if box[2] > box[0] and box[3] > box[1] else [mx0, my0, mx1, my1]


def _font_name(page: pikepdf.Page) -> str:
    from pikepdf import Dictionary

    fonts = page.resources.get("/Font")
    used = set(fonts.keys()) if isinstance(fonts, Dictionary) else set()
    name, n = FONT_RESOURCE, 1
    while "/" + name in used:
        name, n = f"{FONT_RESOURCE}{n}", n + 1
    return name


def _stream(pdf: pikepdf.Pdf, data: bytes) -> pikepdf.Stream:
    from pikepdf import Name, Stream

    return Stream(pdf, zlib.compress(data), Filter=Name.FlateDecode)


def _save(pdf: pikepdf.Pdf) -> bytes:
    from pikepdf import StreamDecodeLevel

    out = io.BytesIO()
    pdf.save(out, compress_streams=False, stream_decode_level=StreamDecodeLevel.none)
    return out.getvalue()


def add_text_layer(data: bytes, pages: Sequence[Page], dpi: float | None = None) -> bytes:
    """The PDF ``data`` with the text of ``pages`` (read at ``dpi``; None: from each page's
    size in pixels) laid invisibly over them. `InvalidInput` for bytes pikepdf cannot open."""
    import pikepdf

    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except (pikepdf.PdfError, pikepdf.PasswordError) as exc:
        raise InvalidInput(f"Cannot open the PDF to add its text layer: {exc}") from None
    with pdf:
        cids: dict[str, int] = {}
        layers: list[tuple[pikepdf.Page, str, bytes]] = []
        for page in pages:
            if page.error or not 1 <= page.number <= len(pdf.pages):
                continue
            if not any(line.source != "text_layer" for line in page.lines):
                continue
            target = pdf.pages[page.number - 1]
            box = _box(target)
            rotate = int(_inherited(target, "/Rotate", 0))
            width_pt = box[3] - box[1] if rotate % 180 else box[2] - box[0]
            scale = dpi / POINTS_PER_INCH if dpi else page.width / width_pt
            font = _font_name(target)
            layers.append((target, font, _layer(page, _Frame(box, rotate, scale), font, cids)))
        if not layers:
            return data  # nothing to add: the original, as it came
        font_obj = _font(pdf, cids)
        for target, font, ops in layers:
            resources = target.resources
            if "/Font" not in resources:
                resources["/Font"] = pikepdf.Dictionary()
            resources["/Font"][f"/{font}"] = font_obj
            target.contents_add(pikepdf.Stream(pdf, b"q\n"), prepend=True)
            target.contents_add(_stream(pdf, b"\nQ\nq\n" + ops + b"Q\n"))
        return _save(pdf)


def _inherited(page: pikepdf.Page, key: str, default: Any) -> Any:
    """A page attribute that may be set on an ancestor in the page tree."""
    node: Any = page.obj
    for _ in range(64):  # a page tree is shallow; a cycle is not followed forever
        if key in node:
            return node[key]
        if "/Parent" not in node:
            break
        node = node["/Parent"]
    return default


def text_only_pdf(page: Page, dpi: float) -> bytes:
    """A one-page PDF of the page's size at ``dpi`` holding only its invisible text."""
    import pikepdf

    pdf = pikepdf.new()
    scale = dpi / POINTS_PER_INCH
    box = [0.0, 0.0, page.width / scale, page.height / scale]
    blank = pdf.add_blank_page(page_size=(box[2], box[3]))
    cids: dict[str, int] = {}
    ops = _layer(page, _Frame(box, 0, scale), TEXT_ONLY_FONT, cids)
    if cids:
        blank.resources["/Font"] = pikepdf.Dictionary({f"/{TEXT_ONLY_FONT}": _font(pdf, cids)})
        blank.obj.Contents = pdf.make_indirect(_stream(pdf, ops))  # one stream, as grafted
    return _save(pdf)
