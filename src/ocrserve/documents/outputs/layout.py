"""What every output writer reads from an end-to-end answer: pages, lines with their geometry,
blocks of lines, and words with boxes.

An answer is an image's ``{"result": [lines]}`` or a document's ``{"pages": [{"page", "width",
"height", "result"}]}``; each line ``{"box": [x1, y1, ..., x4, y4], "text", "text_score", ...}``
with its quadrilateral clockwise from the top-left corner of its text, in pixels (y down).

Word boxes are split from the line's box: the answer has no character positions, so each word
gets the share of the line's length that its characters (the spaces between words included)
have of the line's text, along the line's direction. A line that the recognizer read turned
(a crop much taller than wide, which `ocrserve.ppocr.e2e.crop_quad` turns a quarter) runs from
its top edge down. Writers only call `words`: character positions, when answers carry them,
replace the split there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BLOCK_GAP",
    "Block",
    "Line",
    "Page",
    "Word",
    "blocks",
    "pages_of",
    "words",
    "xml_text",
]

Point = tuple[float, float]
#: An axis-aligned box: left, top, right, bottom.
Box = tuple[float, float, float, float]

#: A line starts a new block when the gap above it is over this many line heights, or when it
#: does not overlap the block's last line sideways.
BLOCK_GAP = 1.0
#: Characters XML 1.0 cannot hold (C0 controls but tab, newline, carriage return; surrogates;
#: U+FFFE and U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: A crop this much taller than wide is read turned a quarter (`crop_quad`'s rule).
TURNED = 1.5


@dataclass(frozen=True)
class Word:
    """A word: its text, its quadrilateral and axis-aligned box, and its confidence (0-1)."""

    text: str
    quad: tuple[Point, Point, Point, Point]
    box: Box
    confidence: float


@dataclass(frozen=True)
class Line:
    """A line of an answer: text, quadrilateral (top-left, top-right, bottom-right,
    bottom-left along the reading direction), axis-aligned box, scores, where it came from."""

    text: str
    quad: tuple[Point, Point, Point, Point]
    box: Box
    confidence: float
    char_scores: tuple[float, ...] | None = None
    source: str = "ocr"

    @property
    def height(self) -> float:
        """Distance from the top edge to the bottom edge (at the line's start)."""
        return _distance(self.quad[0], self.quad[3])

    @property
    def angle(self) -> float:
        """The reading direction in degrees, counter-clockwise from the x axis (y up)."""
        (x0, y0), (x1, y1) = self.quad[0], self.quad[1]
        return math.degrees(math.atan2(y0 - y1, x1 - x0))


@dataclass
class Block:
    """Consecutive lines read as one block (a paragraph, a column's piece)."""

    lines: list[Line] = field(default_factory=list)

    @property
    def box(self) -> Box:
        return _union([line.box for line in self.lines])


@dataclass(frozen=True)
class Page:
    """A page of the answer: its number (from 1), size in pixels, lines, and its error."""

    number: int
    width: int
    height: int
    lines: tuple[Line, ...]
    error: Mapping[str, Any] | None = None

    @property
    def from_text_layer(self) -> bool:
        """Whether the page was answered from the PDF's own text layer."""
        return bool(self.lines) and all(line.source == "text_layer" for line in self.lines)


def _distance(p: Point, q: Point) -> float:
    return math.hypot(q[0] - p[0], q[1] - p[1])


def _union(boxes: Sequence[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _bounds(points: Sequence[Point]) -> Box:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _line(raw: Mapping[str, Any]) -> Line | None:
    text = raw.get("text")
    box = raw.get("box")
    if not isinstance(text, str) or not isinstance(box, list):
        return None
    text = _NOT_XML.sub("", text)  # control characters are no text any format can hold
    if not text.strip():
        return None
    if len(box) < 8:  # an axis-aligned [x0, y0, x1, y1]
        x0, y0, x1, y1 = (float(v) for v in box[:4])
        box = [x0, y0, x1, y0, x1, y1, x0, y1]
    p = [(float(box[i]), float(box[i + 1])) for i in range(0, 8, 2)]
    quad = (p[0], p[1], p[2], p[3])
    if _distance(p[0], p[3]) >= TURNED * _distance(p[0], p[1]):
        quad = (p[1], p[2], p[3], p[0])  # read from the top down, its letters facing right
    scores = raw.get("char_scores")
    chars = tuple(float(s) for s in scores) if isinstance(scores, list) and scores else None
    return Line(
        text=text.strip(),
        quad=quad,
        box=_bounds(p),
        confidence=float(raw.get("text_score", 1.0)),
        char_scores=chars,
        source=str(raw.get("source", "ocr")),
    )


def _page(number: int, width: int, height: int, raw: Mapping[str, Any]) -> Page:
    lines = [_line(r) for r in raw.get("result") or [] if isinstance(r, Mapping)]
    kept = tuple(line for line in lines if line is not None)
    if kept:  # an image's size may be unknown (0): the page holds its lines
        width = max(width, math.ceil(max(line.box[2] for line in kept)))
        height = max(height, math.ceil(max(line.box[3] for line in kept)))
    return Page(number, width, height, kept, raw.get("error"))


def pages_of(answer: Mapping[str, Any], size: tuple[int, int] = (0, 0)) -> list[Page]:
    """The pages of an end-to-end answer; an image's answer is one page of ``size``."""
    if isinstance(answer.get("pages"), list):
        return [
            _page(int(p.get("page", n + 1)), int(p.get("width", 0)), int(p.get("height", 0)), p)
            for n, p in enumerate(answer["pages"])
        ]
    return [_page(1, size[0], size[1], answer)]


def blocks(lines: Sequence[Line]) -> list[Block]:
    """The lines, in their order, grouped into blocks: a line joins the block of the line
    before it when it overlaps that line sideways and the gap above it is at most `BLOCK_GAP`
    line heights (lines side by side on one row stay together)."""
    out: list[Block] = []
    for line in lines:
        if out:
            last = out[-1].lines[-1]
            height = max(1.0, min(last.box[3] - last.box[1], line.box[3] - line.box[1]))
            gap = line.box[1] - last.box[3]
            beside = min(line.box[2], last.box[2]) > max(line.box[0], last.box[0])
            same_row = min(line.box[3], last.box[3]) - max(line.box[1], last.box[1]) > 0
            if (beside and gap <= BLOCK_GAP * height) or same_row:
                out[-1].lines.append(line)
                continue
        out.append(Block([line]))
    return out


def _along(p: Point, q: Point, t: float) -> Point:
    return p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t


def _spans(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each run of non-space characters."""
    start = None
    for i, ch in enumerate(text + " "):
        if ch.isspace():
            if start is not None:
                yield start, i
                start = None
        elif start is None:
            start = i


def words(line: Line) -> list[Word]:
    """The line's words, each with the part of the line's quadrilateral its characters'
    share of the text gives (see the module's note), and its confidence: the mean of its
    characters' scores when the answer has them, else the line's."""
    tl, tr, br, bl = line.quad
    n = len(line.text)
    out = []
    for start, end in _spans(line.text):
        a, b = start / n, end / n
        quad = (_along(tl, tr, a), _along(tl, tr, b), _along(bl, br, b), _along(bl, br, a))
        confidence = line.confidence
        scores = line.char_scores
        if scores is not None and len(scores) == n:
            confidence = sum(scores[start:end]) / (end - start)
        out.append(Word(line.text[start:end], quad, _bounds(quad), confidence))
    return out


def xml_text(text: str, *, quote: bool = False) -> str:
    """``text`` escaped for XML, characters that XML cannot hold left out."""
    text = _NOT_XML.sub("", text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;") if quote else text
