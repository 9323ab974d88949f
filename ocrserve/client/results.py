"""Typed views of the answers, one dataclass per task; each keeps the raw JSON in ``raw``.

The forms are those of docs/api.md: detection ``{"boundary_result": [[x1, y1, ..., score]]}``,
recognition ``{"text", "score"}``, end to end ``{"result": [{"box", "box_score", "text",
"text_score"}]}``; a PDF or multi-page TIFF ``{"pages": [{"page", "width", "height", ...}]}``.
An answer of another form (an MMOCR model with its own keys) is a `Result` with only ``raw``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Box",
    "Detection",
    "Document",
    "EndToEnd",
    "Page",
    "Recognition",
    "Result",
    "TextLine",
    "parse_result",
]

Point = tuple[float, float]


@dataclass(frozen=True)
class Result:
    """An answer; ``raw`` is the JSON the server sent."""

    raw: Any = field(repr=False)


@dataclass(frozen=True)
class Box:
    """A polygon in original-image pixels, clockwise from the top-left vertex."""

    points: list[Point]
    score: float | None = None

    @classmethod
    def from_flat(cls, values: Sequence[float], score: float | None = None) -> Box:
        """``[x1, y1, ..., xn, yn]``, with the score appended when the count is odd."""
        coords = [float(v) for v in values]
        if len(coords) % 2:
            score = coords.pop()
        return cls(list(zip(coords[0::2], coords[1::2])), score)


@dataclass(frozen=True)
class Detection(Result):
    """Text detection: the boxes found."""

    boxes: list[Box] = field(default_factory=list)


@dataclass(frozen=True)
class Recognition(Result):
    """Recognition of one cropped word or line."""

    text: str = ""
    score: float = 0.0


@dataclass(frozen=True)
class TextLine:
    """One line of an end-to-end answer: its box (with the box's score) and its text."""

    box: Box
    text: str
    score: float


@dataclass(frozen=True)
class EndToEnd(Result):
    """End to end: the lines in reading order."""

    lines: list[TextLine] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The lines' texts, one per line."""
        return "\n".join(line.text for line in self.lines)


@dataclass(frozen=True)
class Page:
    """One page of a document: its number (from 1), its size in pixels as the model saw it
    (boxes are in these pixels), and the model's answer for it."""

    number: int
    width: int
    height: int
    result: Result


@dataclass(frozen=True)
class Document(Result):
    """A PDF or multi-page TIFF: one answer per page, in order."""

    pages: list[Page] = field(default_factory=list)


_PAGE_KEYS = ("page", "width", "height")


def _score(value: Any) -> float:
    """A score; MMOCR recognizers may give one per character (their mean is the line's)."""
    if isinstance(value, (list, tuple)):
        return sum(float(v) for v in value) / len(value) if value else 0.0
    return float(value)


def _optional_score(value: Any) -> float | None:
    return None if value is None else _score(value)


def parse_result(raw: Any) -> Result:
    """The typed view of one answer."""
    if isinstance(raw, dict):
        pages = raw.get("pages")
        if isinstance(pages, list) and all(
            isinstance(p, dict) and all(isinstance(p.get(k), int) for k in _PAGE_KEYS)
            for p in pages
        ):
            return Document(raw, [_page(p) for p in pages])
        if isinstance(raw.get("boundary_result"), list):
            return Detection(raw, [Box.from_flat(b) for b in raw["boundary_result"]])
        if isinstance(raw.get("result"), list) and all(
            isinstance(r, dict) and "box" in r and "text" in r for r in raw["result"]
        ):
            lines = [
                TextLine(
                    Box.from_flat(r["box"], _optional_score(r.get("box_score"))),
                    str(r["text"]),
                    _score(r.get("text_score", 0.0)),
                )
                for r in raw["result"]
            ]
            return EndToEnd(raw, lines)
        if isinstance(raw.get("text"), str) and "score" in raw:
            return Recognition(raw, raw["text"], _score(raw["score"]))
    return Result(raw)


def _page(raw: dict[str, Any]) -> Page:
    answer = {k: v for k, v in raw.items() if k not in _PAGE_KEYS}
    return Page(raw["page"], raw["width"], raw["height"], parse_result(answer))
