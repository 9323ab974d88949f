"""Typed views of the answers, one dataclass per task; each keeps the raw JSON in ``raw``.

The forms are those of docs/api.md: detection ``{"boundary_result": [[x1, y1, ..., score]]}``,
recognition ``{"text", "score"}``, end to end ``{"result": [{"box", "box_score", "text",
"text_score"}]}``; a PDF or multi-page TIFF ``{"pages": [{"page", "width", "height", "time_ms",
"done_at", ...}]}``, a page that could not be read carrying TorchServe's error JSON in
``"error"``. An answer of another form (an MMOCR model with its own keys) is a `Result` with
only ``raw``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ocrserve.errors import OcrServeError, error_from_answer

__all__ = [
    "Box",
    "Detection",
    "Document",
    "EndToEnd",
    "Page",
    "Recognition",
    "Result",
    "TextLine",
    "is_page",
    "parse_page",
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
    (boxes are in these pixels), and the model's answer for it (an empty ``Result({})`` when
    the page could not be read: then ``error`` says why). ``time_ms`` is the worker's render
    and read time of the page, ``done_at`` the Unix time the server finished it, ``image`` the
    page as a ``data:`` URI when the request set ``page_image=true``; None when not sent.
    ``raw`` is the page's JSON."""

    number: int
    width: int
    height: int
    result: Result
    error: OcrServeError | None = None
    time_ms: float | None = None
    done_at: float | None = None
    image: str | None = None
    raw: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Document(Result):
    """A PDF or multi-page TIFF: one answer per page, in order."""

    pages: list[Page] = field(default_factory=list)


_PAGE_KEYS = ("page", "width", "height")
#: The keys of a page entry that are the server's, not the model's answer.
_PAGE_FIELDS = frozenset({*_PAGE_KEYS, "time_ms", "done_at", "image", "error"})


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
        if isinstance(pages, list) and all(is_page(p) for p in pages):
            return Document(raw, [parse_page(p) for p in pages])
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


def is_page(raw: Any) -> bool:
    """Whether ``raw`` is a document's page entry: a page number, and the page's size unless
    it carries an error instead."""
    if not isinstance(raw, dict) or not _is_int(raw.get("page")):
        return False
    return isinstance(raw.get("error"), dict) or all(_is_int(raw.get(k)) for k in _PAGE_KEYS)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _optional_float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_page(raw: dict[str, Any]) -> Page:
    """The typed view of one page entry (see `is_page`)."""
    error = raw.get("error")
    exc = None
    if isinstance(error, dict):
        exc = error_from_answer(_int(error.get("code"), 500), error)
        result = Result({})
    else:
        result = parse_result({k: v for k, v in raw.items() if k not in _PAGE_FIELDS})
    image = raw.get("image")
    return Page(
        raw["page"], _int(raw.get("width"), 0), _int(raw.get("height"), 0), result, exc,
        _optional_float(raw.get("time_ms")), _optional_float(raw.get("done_at")),
        image if isinstance(image, str) else None, raw,
    )  # fmt: skip
