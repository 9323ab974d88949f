"""Born-digital PDFs written by hand for the text-layer tests: text in the standard Helvetica
(base-14, WinAnsiEncoding, so PDFium maps every code to Unicode), on rotated pages, on pages
whose MediaBox is not at the origin, in two columns; and the pages whose layer must not be
trusted: an invisible OCR layer over a scan, fonts without a Unicode map, a big picture."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageFont

from tests.documents import raw_pdf, text_page

__all__ = [
    "Line",
    "PdfPage",
    "Picture",
    "captioned_image_page",
    "empty_page",
    "letter_page",
    "mapped_identity_page",
    "mostly_visible_page",
    "ocr_layer_page",
    "offset_page",
    "out_of_order_page",
    "pdf",
    "rotated_page",
    "shuffled_page",
    "sideways_page",
    "some_unmapped_page",
    "two_column_page",
    "unmapped_page",
]

#: Writes what a font needs into the objects (numbered from 1) and gives its reference.
FontWriter = Callable[[list[bytes]], bytes]

HELVETICA = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
#: A simple font whose codes are named by /Differences with glyph names no glyph list knows
#: (``/g17``...), and no /ToUnicode; its glyphs are not in the standard font either.
NAMELESS_FONT = (
    b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding << /Type /Encoding "
    b"/Differences [97 " + b" ".join(b"/g%d" % (17 + k) for k in range(26)) + b"] >> >>"
)
#: Courier: every glyph 0.6 em wide, so characters can be placed one by one on a grid.
COURIER = b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>"
#: The lines of `shuffled_page`.
SHUFFLED_LINES = (
    "Each character of these lines",
    "is its own text object,",
    "drawn in a random order: only",
    "their places say what they read.",
)
#: The resource name of `identity_font`: its text is written as two-byte glyph ids.
IDENTITY_FONT = "CID"


#: A /ToUnicode map for `identity_font`: codes a-z are themselves, but x is U+1D431
#: (mathematical bold small x, outside the BMP: two UTF-16 units).
TO_UNICODE = b"""/CIDInit /ProcSet findresource begin 12 dict begin begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
/CMapName /Adobe-Identity-UCS def /CMapType 2 def
1 begincodespacerange <0000> <FFFF> endcodespacerange
1 beginbfrange <0061> <007a> <0061> endbfrange
1 beginbfchar <0078> <D835DC31> endbfchar
endcmap CMapName currentdict /CMap defineresource pop end end"""


def identity_font(objects: list[bytes], to_unicode: bytes = b"") -> bytes:
    """The commonest font a PDF cannot be searched for: an embedded TrueType (Pillow's own
    font) shown through /Identity-H glyph ids, without /ToUnicode (unless given one)."""
    data = ImageFont.load_default(size=12).font_bytes  # type: ignore[union-attr]
    objects.append(_stream(data, b"/Length1 %d" % len(data)))
    objects.append(
        b"<< /Type /FontDescriptor /FontName /Embedded /Flags 4 /FontBBox [0 -200 1000 900] "
        b"/ItalicAngle 0 /Ascent 900 /Descent -200 /CapHeight 700 /StemV 80 "
        b"/FontFile2 %d 0 R >>" % (len(objects))
    )
    objects.append(
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Embedded /CIDSystemInfo "
        b"<< /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor %d 0 R "
        b"/CIDToGIDMap /Identity >>" % len(objects)
    )
    descendant = len(objects)
    extra = b""
    if to_unicode:
        objects.append(_stream(to_unicode))
        extra = b"/ToUnicode %d 0 R" % len(objects)
    objects.append(
        b"<< /Type /Font /Subtype /Type0 /BaseFont /Embedded /Encoding /Identity-H "
        b"/DescendantFonts [%d 0 R] %s >>" % (descendant, extra)
    )
    return b"%d 0 R" % len(objects)


def mapped_identity_font(objects: list[bytes]) -> bytes:
    """`identity_font` with the /ToUnicode map `TO_UNICODE`."""
    return identity_font(objects, TO_UNICODE)


@dataclass(frozen=True)
class Line:
    """One line of text drawn with its baseline starting at ``(x, y)`` (PDF user space) in
    ``size`` points: what a test expects the layer to give back."""

    text: str
    x: float
    y: float
    size: float = 12.0
    font: str = "F1"
    mode: int = 0  # text render mode (``Tr``): 3 is invisible
    #: the text's direction, degrees anticlockwise in user space
    angle: int = 0

    def content(self) -> bytes:
        cos, sin = {0: (1, 0), 90: (0, 1), 180: (-1, 0), 270: (0, -1)}[self.angle]
        codec = "utf-16-be" if self.font.startswith(IDENTITY_FONT) else "cp1252"
        return b"BT /%s %g Tf %d Tr %d %d %d %d %g %g Tm <%s> Tj ET\n" % (
            self.font.encode(),
            self.size,
            self.mode,
            cos,
            sin,
            -sin,
            cos,
            self.x,
            self.y,
            self.text.encode(codec).hex().encode(),
        )


@dataclass(frozen=True)
class Picture:
    """An image drawn in the user-space rectangle ``(x, y, width, height)``, directly or
    through a form XObject (whose own /Matrix then moves it)."""

    image: Image.Image
    rect: tuple[float, float, float, float]
    in_form: bool = False


@dataclass(frozen=True)
class PdfPage:
    """One page: its lines, pictures, boxes (``(x0, y0, x1, y1)``), /Rotate and fonts."""

    lines: Sequence[Line] = ()
    pictures: Sequence[Picture] = ()
    media_box: tuple[float, float, float, float] = (0, 0, 612, 792)
    crop_box: tuple[float, float, float, float] | None = None
    rotate: int = 0
    fonts: dict[str, bytes | FontWriter] = field(default_factory=lambda: {"F1": HELVETICA})


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(data), extra, data)


def _box(box: tuple[float, float, float, float]) -> bytes:
    return b"[%g %g %g %g]" % box


def _picture(objects: list[bytes], pic: Picture) -> tuple[bytes, int]:
    """Write ``pic``'s image (and form) objects; the content that draws it, and its object."""
    grey = pic.image.convert("L")
    extra = b"/Type /XObject /Subtype /Image /Width %d /Height %d " % grey.size
    extra += b"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode"
    objects.append(_stream(zlib.compress(grey.tobytes()), extra))
    x, y, w, h = pic.rect
    if not pic.in_form:
        return b"q %g 0 0 %g %g %g cm /X Do Q\n" % (w, h, x, y), len(objects)
    # The form's /Matrix moves it 10 points right and the page's cm 300 down: both count.
    inner = b"q %g 0 0 %g %g %g cm /X Do Q" % (w, h, x - 10, y + 300)
    form = b"/Type /XObject /Subtype /Form /BBox [-1000 -1000 3000 3000] /Matrix [1 0 0 1 10 0] "
    form += b"/Resources << /XObject << /X %d 0 R >> >>" % len(objects)
    objects.append(_stream(inner, form))
    return b"q 1 0 0 1 0 -300 cm /X Do Q\n", len(objects)


def pdf(pages: Sequence[PdfPage]) -> bytes:
    """A PDF of ``pages``; each page's fonts, images and content follow its page object."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for page in pages:
        objects.append(b"")  # the page, once its resources have numbers
        number = len(objects)
        kids.append(b"%d 0 R" % number)
        content, xobjects = b"", b""
        for k, pic in enumerate(page.pictures):
            draw, ref = _picture(objects, pic)
            content += draw.replace(b"/X ", b"/Im%d " % k)
            xobjects += b"/Im%d %d 0 R " % (k, ref)
        fonts = b""
        for name, font in page.fonts.items():
            fonts += b"/%s %s " % (
                name.encode(),
                font if isinstance(font, bytes) else font(objects),
            )
        content += b"".join(line.content() for line in page.lines)
        objects.append(_stream(content))
        crop = b"/CropBox %s" % _box(page.crop_box) if page.crop_box else b""
        objects[number - 1] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox %s %s /Rotate %d /Contents %d 0 R "
            b"/Resources << /Font << %s >> /XObject << %s >> >> >>"
            % (_box(page.media_box), crop, page.rotate, len(objects), fonts, xobjects)
        )
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(pages))
    return raw_pdf(objects)


def letter_page() -> PdfPage:
    """A letter: a heading and a paragraph, one column, accents, punctuation, a double space."""
    return PdfPage(
        [
            Line("Invoice 2024-117", 72, 720, 20),
            Line("Dear Ms. Lef\u00e8vre,", 72, 680),
            Line("thank you for your order of 12 May (ref. A/77).", 72, 662),
            Line("The total, \u20ac 1,250.00, is due within  30 days.", 72, 644),
            Line("Kind regards,", 72, 610),
            Line("Ocrserve GmbH", 72, 592, 10),
        ]
    )


def two_column_page() -> PdfPage:
    """Two columns about 100 points apart, the right one's baselines 3 points higher."""
    left = ["Left column one", "second line left", "third on the left"]
    right = ["Right column A", "right line B", "last right C"]
    lines = [Line(t, 72, 700 - 16 * k) for k, t in enumerate(left)]
    return PdfPage(lines + [Line(t, 330, 703 - 16 * k) for k, t in enumerate(right)])


def rotated_page(rotate: int) -> PdfPage:
    """A page with /Rotate ``rotate`` whose text is drawn turned the other way, so that it
    reads upright on the rendered page (a landscape page as most writers make it)."""
    w, h = 612, 792
    starts = {
        0: lambda k: (72, h - 72 - 20 * k),
        90: lambda k: (72 + 20 * k, 72),
        180: lambda k: (w - 72, 72 + 20 * k),
        270: lambda k: (w - 72 - 20 * k, h - 72),
    }[rotate]
    texts = ["Rotated page title", "second line here", "and a third one"]
    lines = [Line(t, *starts(k), size=14, angle=rotate) for k, t in enumerate(texts)]
    return PdfPage(lines, rotate=rotate)


def sideways_page() -> PdfPage:
    """/Rotate 90 over text drawn level in user space: on the rendered page it runs top to
    bottom (as a scanner's landscape page shows before anyone turns it)."""
    return PdfPage(
        [Line("Sideways text", 100, 500, 16), Line("next line", 100, 480, 16)], rotate=90
    )


def offset_page() -> PdfPage:
    """A MediaBox at (100, 200) and a CropBox inside it: user space is not page pixels. The
    last line is below the CropBox: not on the page."""
    return PdfPage(
        [Line("Offset box text", 180, 900), Line("inside the crop", 180, 880)]
        + [Line("cropped away", 180, 230)],
        media_box=(100, 200, 712, 992),
        crop_box=(150, 260, 650, 950),
    )


def out_of_order_page() -> PdfPage:
    """One line drawn as two pieces, its second part first and a heading between them (PDFium
    keeps such pieces apart in its order)."""
    return PdfPage(
        [Line("world, again", 107.4, 650), Line("Heading", 72, 700, 18), Line("Hello", 72, 650)]
    )


def shuffled_page(seed: int = 0) -> PdfPage:
    """`SHUFFLED_LINES` in 10-point Courier (a 6-point pitch), a text object per character,
    the objects in a random order."""
    cells = [
        Line(char, 72 + 6 * k, 700 - 14 * row, 10, font="F3")
        for row, text in enumerate(SHUFFLED_LINES)
        for k, char in enumerate(text)
        if char != " "
    ]
    random.Random(seed).shuffle(cells)
    return PdfPage(cells, fonts={"F3": COURIER})


def ocr_layer_page() -> PdfPage:
    """What OCRmyPDF writes: a page-sized scan, its words in invisible text (``3 Tr``) on top."""
    scan = text_page("HELLO WORLD", (1275, 1650))
    lines = [Line("HELLO WORLD", 19, 700, 27, mode=3), Line("scanned page", 19, 600, 12, mode=3)]
    return PdfPage(lines, [Picture(scan, (0, 0, 612, 792))])


def mostly_visible_page() -> PdfPage:
    """Visible text and one short invisible line (a hidden search term)."""
    page = letter_page()
    return PdfPage([*page.lines, Line("hidden words", 72, 500, mode=3)])


def unmapped_page(font: str = IDENTITY_FONT) -> PdfPage:
    """Text in a font without a Unicode map: `identity_font` (``"CID"``) or `NAMELESS_FONT`
    (``"F2"``, whose glyphs are not drawn at all)."""
    lines = [Line("abcdefgh ijkl", 72, 700, font=font), Line("mnopq", 72, 680, font=font)]
    return PdfPage(lines, fonts={"F1": HELVETICA, "F2": NAMELESS_FONT, "CID": identity_font})


def mapped_identity_page() -> PdfPage:
    """Text in `identity_font` with a /ToUnicode map, one character outside the BMP."""
    lines = [Line("abc xyz", 72, 700, font="CIDU")]
    return PdfPage(lines, fonts={"F1": HELVETICA, "CIDU": mapped_identity_font})


def some_unmapped_page(count: int) -> PdfPage:
    """The letter (188 characters that are not spaces) and ``count`` unmapped glyphs."""
    page = unmapped_page()
    return PdfPage([*letter_page().lines, Line("x" * count, 72, 400, font=IDENTITY_FONT)],
                   fonts=page.fonts)  # fmt: skip


def captioned_image_page(cover: float = 0.6, in_form: bool = False) -> PdfPage:
    """A picture over ``cover`` of the page (it holds text the layer lacks) and a caption."""
    w, h = 612 * cover**0.5, 792 * cover**0.5
    picture = Picture(text_page("CHART 2024", (800, 600)), (0, 792 - h, w, h), in_form)
    return PdfPage([Line("Figure 1: sales by month", 72, 60, 10)], [picture])


def empty_page() -> PdfPage:
    """A page with nothing on it."""
    return PdfPage([])
