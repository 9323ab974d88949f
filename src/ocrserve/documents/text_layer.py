"""A born-digital PDF page's own text, taken as it is: its text layer read with PDFium as the
lines an end-to-end model answers, and whether that layer can stand in for OCR.

A page's layer is *usable* when all of these hold (the constants below are the thresholds):

- it has at least one visible character that is not whitespace (else "no text layer");
- it is visible text: characters drawn in an invisible text render mode (3, ``3 Tr``, what
  OCRmyPDF, Tesseract and many scanners write over a scan; or 7, clip only) are at most
  `MAX_INVISIBLE_SHARE` of the page's characters; a page that is mostly invisible text carries
  another tool's OCR layer, and ocrserve reads the page itself;
- its Unicode is real: characters without a Unicode mapping (PDFium's map error: the font has
  no /ToUnicode and no glyph name it knows, so it reports the character *code*; or the code
  points 0, U+FFFD, U+FFFE, U+FFFF, or private use) are under `MAX_UNMAPPED_SHARE` of them;
- no picture may hold text the layer lacks: image objects' boxes, clipped to the page, cover at
  most `MAX_IMAGE_COVER` of it (a scan, with or without a layer, never passes).

Characters outside the page, or of no size, are not on the page and count for nothing. Text
that is drawn as paths, hidden under a picture or clipped away is not detected.

Lines are in the rendered page's pixels at ``scale`` (origin top-left, y down, as
``FPDF_RenderPageBitmap`` draws the page at ``ceil(width_pt * scale)`` pixels wide; /Rotate
and boxes not at the origin included): each one's box is the union of its characters' tight
glyph boxes. Characters are grouped into lines along their direction on the rendered page
(a quarter turn at a time), a line is split where the gap exceeds `COLUMN_GAP` character
heights, and lines come top to bottom, then left to right. PDFium's spaces (generated ones
too) are the word gaps. Lines hold the visible characters; with none, the invisible ones.

pypdfium2 is imported inside the functions: only worker processes read PDFs. PDFium parses the
page; nothing in a document is executed.
"""

from __future__ import annotations

import bisect
import ctypes
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pypdfium2 as pdfium

__all__ = [
    "COLUMN_GAP",
    "MAX_CHARS",
    "MAX_IMAGE_COVER",
    "MAX_INVISIBLE_SHARE",
    "MAX_UNMAPPED_SHARE",
    "TextLayer",
    "read_text_layer",
]

#: Most share of a page's characters that may be invisible (render mode 3 or 7).
MAX_INVISIBLE_SHARE = 0.5
#: A page is usable only when fewer of its visible characters than this lack Unicode.
MAX_UNMAPPED_SHARE = 0.05
#: Most share of the page that image objects may cover.
MAX_IMAGE_COVER = 0.25
#: Pages with more characters (a dense page has 5,000) are not read: hostile, or not text.
MAX_CHARS = 100_000
#: A horizontal gap wider than this many character heights splits a line (two columns).
COLUMN_GAP = 2.5
#: Two characters share a line when their vertical extents overlap by this share of the smaller.
LINE_OVERLAP = 0.5
#: Neighbours on a line that are not neighbours in PDFium's order (pieces drawn apart) get a
#: space between them when their gap exceeds this many character heights.
WORD_GAP = 0.2

_INVISIBLE_MODES = frozenset({3, 7})  # FPDF_TEXTRENDERMODE_INVISIBLE, _CLIP
_UNMAPPED = frozenset({0, 0xFFFD, 0xFFFE, 0xFFFF})
#: How PDFium gives a hyphen that ends a line (``FPDFText_IsHyphen``): U+FFFE in the page's
#: text, U+0002 from ``FPDFText_GetUnicode``.
_HYPHEN_MARKS = frozenset("\ufffe\x02")
_SPACES = re.compile(r"\s+")
_MAX_FORM_DEPTH = 16

_Box = tuple[float, float, float, float]  # x0, y0, x1, y1
_Affine = tuple[float, float, float, float, float, float]  # x' = a x + c y + e, y' = b x + d y + f


@dataclass(frozen=True)
class TextLayer:
    """A page's text layer: ``lines`` as an end-to-end model answers (``"source":
    "text_layer"``), whether it can stand in for OCR (``usable``) and why (``reason``)."""

    lines: list[dict[str, Any]]
    usable: bool
    reason: str


@dataclass(slots=True)
class _Char:
    """One character that is not whitespace: its text, its tight box on the rendered page (or
    None without ink), its loose box (font ascent to descent, advance wide) in the frame where
    its line runs left to right, the quarter turns of that frame, and what the layer says."""

    text: str
    box: _Box | None
    loose: _Box  # device pixels
    frame: _Box
    turns: int
    space_before: bool
    visible: bool
    unmapped: bool
    order: int = 0  # place among the page's characters, in PDFium's order

    @property
    def height(self) -> float:
        return self.frame[3] - self.frame[1]


def read_text_layer(doc: pdfium.PdfDocument, index: int, scale: float) -> TextLayer:
    """The text layer of page ``index`` (from 0) of ``doc``, its lines in pixels at ``scale``
    pixels per point, and whether it is usable (the module's rules)."""
    page = doc[index]
    textpage = page.get_textpage()
    try:
        count = textpage.count_chars()
        if count == 0:
            return TextLayer([], False, "no text layer")
        if count > MAX_CHARS:
            return TextLayer([], False, f"{count} characters, too many for a page: not read")
        width = math.ceil(page.get_width() * scale)
        height = math.ceil(page.get_height() * scale)
        to_device = _device_transform(page, width, height)
        objects = _PageObjects(page, to_device, width, height)
        kinds = objects.text_kinds
        uniform = next(iter(kinds)) if len(kinds) == 1 else None
        chars = _read_chars(textpage, to_device, width, height, uniform)
    finally:
        textpage.close()
        page.close()
    visible = [ch for ch in chars if ch.visible]
    lines = _lines(visible or chars)
    usable, reason = _judge(chars, visible, objects.image_cover)
    return TextLayer(lines, usable, reason)


def _judge(chars: list[_Char], visible: list[_Char], cover: float) -> tuple[bool, str]:
    if not chars:
        return False, "no text layer"
    invisible = 1 - len(visible) / len(chars)
    if not visible or invisible > MAX_INVISIBLE_SHARE:
        return False, f"{invisible:.0%} of the text is invisible (render mode 3): an OCR layer"
    unmapped = sum(ch.unmapped for ch in visible) / len(visible)
    if unmapped >= MAX_UNMAPPED_SHARE:
        return False, f"{unmapped:.0%} of characters have no Unicode mapping"
    if cover > MAX_IMAGE_COVER:
        return False, f"images cover {cover:.0%} of the page"
    return True, f"{len(visible)} visible characters with Unicode, images cover {cover:.0%}"


def _device_transform(page: Any, width: int, height: int) -> _Affine:
    """The affine map from PDF user space to the rendered page's pixels, read from
    ``FPDF_PageToDevice`` at three corners of the page's box, so that /Rotate, MediaBox and
    CropBox are PDFium's own business. Its answers are whole pixels, and exact here: the
    corners of the box land on the corners of the ``width`` x ``height`` bitmap."""
    import pypdfium2.raw as pdfium_c

    left, bottom, right, top = page.get_bbox()
    if right <= left or top <= bottom:
        right, top = left + 1, bottom + 1
    dx, dy = ctypes.c_int(), ctypes.c_int()

    def probe(x: float, y: float) -> tuple[float, float]:
        pdfium_c.FPDF_PageToDevice(page.raw, 0, 0, width, height, 0, x, y, dx, dy)
        return dx.value, dy.value

    x0, y0 = probe(left, bottom)
    x1, y1 = probe(right, bottom)
    x2, y2 = probe(left, top)
    a, b = (x1 - x0) / (right - left), (y1 - y0) / (right - left)
    c, d = (x2 - x0) / (top - bottom), (y2 - y0) / (top - bottom)
    return a, b, c, d, x0 - a * left - c * bottom, y0 - b * left - d * bottom


def _apply_all(m: _Affine, boxes: np.ndarray) -> np.ndarray:
    """The axis-aligned boxes around ``boxes`` (n x 4: x0, y0, x1, y1) mapped through ``m``:
    each output coordinate is a sum of one term per input axis, each smallest (or largest) at
    one end of its axis's range."""
    a, b, c, d, e, f = m
    xs, ys = boxes[:, 0::2], boxes[:, 1::2]
    ax, bx, cy, dy = a * xs, b * xs, c * ys, d * ys
    return np.stack(
        [
            e + ax.min(1) + cy.min(1),
            f + bx.min(1) + dy.min(1),
            e + ax.max(1) + cy.max(1),
            f + bx.max(1) + dy.max(1),
        ],
        axis=1,
    )


def _turns(m: _Affine, a: float, b: float) -> int:
    """Quarter turns clockwise, on the rendered page, of the direction ``(a, b)`` in user
    space (a text matrix's first row): the direction its text runs."""
    ux, uy = m[0] * a + m[2] * b, m[1] * a + m[3] * b
    return round(math.atan2(uy, ux) / (math.pi / 2)) % 4 if ux or uy else 0


def _turn(box: _Box, turns: int) -> _Box:
    """``box`` in the frame turned ``turns`` quarter turns anticlockwise (y down), where text
    running ``turns`` quarter turns clockwise on the page runs left to right."""
    x0, y0, x1, y1 = box
    if turns == 1:
        return y0, -x1, y1, -x0
    if turns == 2:
        return -x1, -y1, -x0, -y0
    if turns == 3:
        return -y1, x0, -y0, x1
    return box


def _page_units(tp: Any, count: int) -> list[str]:
    """The text page's characters, one per index: UTF-16 code units (PDFium keeps a character
    outside the BMP as two, a surrogate pair), read in one call where PDFium allows."""
    import pypdfium2.raw as pdfium_c

    buffer = (ctypes.c_ushort * (count + 1))()
    if pdfium_c.FPDFText_GetText(tp, 0, count, buffer) == count + 1:
        return [chr(unit) for unit in buffer[:count]]
    codes = (pdfium_c.FPDFText_GetUnicode(tp, i) for i in range(count))
    return [chr(code) if code < 0x110000 else "\ufffd" for code in codes]


def _pair(units: list[str], i: int) -> str | None:
    """The character outside the BMP whose surrogate pair starts at ``units[i]``, if any."""
    high, low = ord(units[i]), ord(units[i + 1]) if i + 1 < len(units) else 0
    if 0xD800 <= high < 0xDC00 and 0xDC00 <= low < 0xE000:
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    return None


def _read_chars(
    textpage: Any, m: _Affine, width: int, height: int, uniform: tuple[bool, int] | None
) -> list[_Char]:
    """The page's characters that are not whitespace and lie on the page, in PDFium's order.
    ``uniform`` is what every text object of the page shares (visible?, direction); without
    it each character's text object is looked up."""
    import pypdfium2.raw as pdfium_c

    tp = textpage.raw
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    rect, matrix = pdfium_c.FS_RECTF(), pdfium_c.FS_MATRIX()
    by_object: dict[int | None, tuple[bool, int]] = {}
    found: list[tuple[str, bool, bool, tuple[bool, int]]] = []  # text, space?, unmapped?, kind
    loose, tight = [], []
    space = paired = False
    units = _page_units(tp, pdfium_c.FPDFText_CountChars(tp))
    for i, char in enumerate(units):
        if paired:  # the second half of a surrogate pair, read with the first
            paired = False
            continue
        if char.isspace():  # PDFium's generated characters are all spaces and line breaks
            space = True
            continue
        pair = _pair(units, i)
        if pair is not None:
            char, paired = pair, True
        if char in _HYPHEN_MARKS and pdfium_c.FPDFText_IsHyphen(tp, i) == 1:
            char = "-"  # a hyphen that ends a line, as drawn
        category = unicodedata.category(char)
        if category == "Cc":
            continue
        pdfium_c.FPDFText_GetLooseCharBox(tp, i, rect)
        loose.append((rect.left, rect.bottom, rect.right, rect.top))
        pdfium_c.FPDFText_GetCharBox(tp, i, left, right, bottom, top)
        tight.append((left.value, bottom.value, right.value, top.value))
        kind = uniform
        if kind is None:
            obj = pdfium_c.FPDFText_GetTextObject(tp, i)
            key = ctypes.cast(obj, ctypes.c_void_p).value
            if key not in by_object:
                visible = not key or _visible(pdfium_c.FPDFTextObj_GetTextRenderMode(obj))
                pdfium_c.FPDFText_GetMatrix(tp, i, matrix)
                by_object[key] = visible, _turns(m, matrix.a, matrix.b)
            kind = by_object[key]
        unmapped = (
            pdfium_c.FPDFText_HasUnicodeMapError(tp, i) == 1
            or ord(char) in _UNMAPPED
            or category in ("Co", "Cs", "Cn")
        )
        found.append((char, space, unmapped, kind))
        space = False
    if not found:
        return []
    loose_px, tight_px = _apply_all(m, np.array(loose)), _apply_all(m, np.array(tight))
    centre = (loose_px[:, :2] + loose_px[:, 2:]) / 2
    on_page = (loose_px[:, 2:] > loose_px[:, :2]).all(1)  # of some size, its centre inside
    on_page &= (centre >= 0).all(1) & (centre <= (width, height)).all(1)
    inked = (tight_px[:, 2] > tight_px[:, 0]) & (tight_px[:, 3] > tight_px[:, 1])
    chars: list[_Char] = []
    space = False
    for (char, space_before, unmapped, kind), keep, ink, lbox, tbox in zip(
        found, on_page.tolist(), inked.tolist(), loose_px.tolist(), tight_px.tolist()
    ):
        space = space or space_before
        if not keep:
            continue
        lbox = tuple(lbox)
        chars.append(
            _Char(
                text=char,
                box=tuple(tbox) if ink else None,
                loose=lbox,
                frame=_turn(lbox, kind[1]),
                turns=kind[1],
                space_before=space,
                visible=kind[0],
                unmapped=unmapped,
                order=len(chars),
            )
        )
        space = False
    return chars


def _visible(mode: int) -> bool:
    return mode not in _INVISIBLE_MODES


class _PageObjects:
    """What the page's objects say, inside form XObjects too (placed by the form's matrix):
    the share of the rendered page that images' boxes cover (summed, at most 1), and what
    its text objects are (visible?, direction)."""

    def __init__(self, page: Any, m: _Affine, width: int, height: int) -> None:
        import pypdfium2.raw as pdfium_c

        self._c = pdfium_c
        self._size = width, height
        self._bounds = tuple(ctypes.c_float() for _ in range(4))
        self._matrix = pdfium_c.FS_MATRIX()
        #: (visible?, direction) of each text object; None where PDFium gives no matrix
        self.text_kinds: set[tuple[bool, int] | None] = set()
        self._area = 0.0
        raw = page.raw
        count = pdfium_c.FPDFPage_CountObjects(raw)
        self._walk([pdfium_c.FPDFPage_GetObject(raw, j) for j in range(count)], m, 0)
        self.image_cover = min(1.0, self._area / max(width * height, 1))

    def _walk(self, objects: list[Any], m: _Affine, depth: int) -> None:
        pdfium_c, fm = self._c, self._matrix
        for obj in objects:
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            image = kind == pdfium_c.FPDF_PAGEOBJ_IMAGE
            if image and pdfium_c.FPDFPageObj_GetBounds(obj, *self._bounds):
                box = [v.value for v in self._bounds]  # left, bottom, right, top
                x0, y0, x1, y1 = _apply_all(m, np.array([box])).tolist()[0]
                w = min(x1, self._size[0]) - max(x0, 0)
                h = min(y1, self._size[1]) - max(y0, 0)
                self._area += max(w, 0) * max(h, 0)
            elif kind == pdfium_c.FPDF_PAGEOBJ_TEXT:
                visible = _visible(pdfium_c.FPDFTextObj_GetTextRenderMode(obj))
                known = pdfium_c.FPDFPageObj_GetMatrix(obj, fm)
                self.text_kinds.add((visible, _turns(m, fm.a, fm.b)) if known else None)
            elif kind == pdfium_c.FPDF_PAGEOBJ_FORM:
                if depth >= _MAX_FORM_DEPTH:
                    self.text_kinds.add(None)  # not looked into: its text is unknown
                    continue
                inner = m
                if pdfium_c.FPDFPageObj_GetMatrix(obj, fm):
                    inner = _compose(m, (fm.a, fm.b, fm.c, fm.d, fm.e, fm.f))
                count = pdfium_c.FPDFFormObj_CountObjects(obj)
                children = [pdfium_c.FPDFFormObj_GetObject(obj, j) for j in range(count)]
                self._walk(children, inner, depth + 1)


def _compose(outer: _Affine, inner: _Affine) -> _Affine:
    """``outer`` after ``inner``: a point goes through ``inner`` first."""
    a, b, c, d, e, f = outer
    ia, ib, ic, id_, ie, if_ = inner
    x, y = a * ie + c * if_ + e, b * ie + d * if_ + f
    return a * ia + c * ib, b * ia + d * ib, a * ic + c * id_, b * ic + d * id_, x, y


def _overlap(p: _Box, q: _Box) -> bool:
    """Whether two frame boxes share a line: their vertical extents overlap enough."""
    shared = min(p[3], q[3]) - max(p[1], q[1])
    return shared >= LINE_OVERLAP * min(p[3] - p[1], q[3] - q[1])


class _Line:
    """Characters of one line, the frame box around them and their median height (their
    heights kept sorted: lines grow a piece at a time)."""

    def __init__(self, chars: list[_Char]) -> None:
        self.chars = chars
        self.joined = False
        self.frame = _union([ch.frame for ch in chars])
        self._heights = sorted(ch.height for ch in chars)

    @property
    def height(self) -> float:
        return self._heights[len(self._heights) // 2]

    def extend(self, other: _Line) -> None:
        self.chars += other.chars
        self.joined = True
        self.frame = _union([self.frame, other.frame])
        for h in other._heights:
            bisect.insort(self._heights, h)

    def text(self) -> str:
        """The characters left to right: in PDFium's order with its spaces within a piece,
        by position across pieces, with a space where their gap is wide."""
        chars = sorted(self.chars, key=lambda ch: ch.frame[0]) if self.joined else self.chars
        parts = [chars[0].text]
        for prev, ch in zip(chars, chars[1:]):
            if ch.order == prev.order + 1:
                space = ch.space_before
            else:
                space = ch.frame[0] - prev.frame[2] > WORD_GAP * self.height
            parts.append(" " + ch.text if space else ch.text)
        return "".join(parts)


def _union(boxes: list[_Box]) -> _Box:
    x0s, y0s, x1s, y1s = zip(*boxes)
    return min(x0s), min(y0s), max(x1s), max(y1s)


def _pieces(chars: list[_Char]) -> list[_Line]:
    """Runs of characters in PDFium's order that go on along one line without a wide gap."""
    runs: list[list[_Char]] = []
    for ch in chars:
        if runs:
            prev = runs[-1][-1]
            h = max(prev.height, ch.height)
            gap = ch.frame[0] - prev.frame[2]
            if _overlap(prev.frame, ch.frame) and ch.frame[0] >= prev.frame[0] - 0.1 * h:
                if gap <= COLUMN_GAP * h:
                    runs[-1].append(ch)
                    continue
        runs.append([ch])
    return [_Line(run) for run in runs]


def _join(pieces: list[_Line]) -> list[_Line]:
    """Pieces of the same line (text drawn out of order) joined; a gap wider than
    `COLUMN_GAP` character heights keeps two columns apart. Lines are filed by height band,
    so that each piece is compared with the lines near it only."""
    if not pieces:
        return []
    band = max(median(p.height for p in pieces), 1e-3)
    reach = math.ceil(max(p.height for p in pieces) / band) + 1
    bands: dict[int, list[_Line]] = {}
    lines: list[_Line] = []
    for piece in sorted(pieces, key=lambda p: p.frame[0]):
        k = math.floor((piece.frame[1] + piece.frame[3]) / 2 / band)
        near = (line for j in range(k - reach, k + reach + 1) for line in bands.get(j, ()))
        for line in near:
            gap = piece.frame[0] - line.frame[2]  # below 0 where the piece fills a hole
            if _overlap(line.frame, piece.frame) and gap <= COLUMN_GAP * line.height:
                line.extend(piece)
                break
        else:
            lines.append(piece)
            bands.setdefault(k, []).append(piece)
    return lines


def _reading_order(lines: list[_Line]) -> list[_Line]:
    """Top to bottom; lines that share a row (they overlap vertically) left to right."""
    rows: list[list[_Line]] = []
    for line in sorted(lines, key=lambda ln: (ln.frame[1] + ln.frame[3]) / 2):
        if rows and _overlap(rows[-1][0].frame, line.frame):
            rows[-1].append(line)
        else:
            rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda ln: ln.frame[0])]


def _lines(chars: list[_Char]) -> list[dict[str, Any]]:
    """The answer's lines: per direction on the page (the commonest first), in reading order."""
    out: list[dict[str, Any]] = []
    for turns, _ in Counter(ch.turns for ch in chars).most_common():
        group = [ch for ch in chars if ch.turns == turns]
        for line in _reading_order(_join(_pieces(group))):
            text = unicodedata.normalize("NFC", _SPACES.sub(" ", line.text()).strip())
            if text:
                out.append(_answer(line, text))
    return out


def _answer(line: _Line, text: str) -> dict[str, Any]:
    inked = [ch.box for ch in line.chars if ch.box is not None]
    x0, y0, x1, y1 = (round(v, 1) for v in _union(inked or [ch.loose for ch in line.chars]))
    return {
        "box": [x0, y0, x1, y0, x1, y1, x0, y1],
        "box_score": 1.0,
        "text": text,
        "text_score": 1.0,
        "source": "text_layer",
    }
