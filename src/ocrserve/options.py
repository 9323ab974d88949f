"""Per-request options: what a prediction request may change, per task, and their validation.

A request passes options as query parameters, as JSON fields beside ``data``, or as multipart
fields beside the image. The HTTP layer validates them here (`parse_options`) against the
model's task and the options its archive pins, so that a bad one is a 400 naming it before any
work; the worker hands the typed values to the predictor (``predict(images, options)``) and the
document ones (`DOCUMENT_OPTIONS`) to the PDF/TIFF reader. This module imports nothing heavy: the
HTTP process, the archivers and the workers all use it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ocrserve.errors import InvalidInput

__all__ = [
    "DOCUMENT_OPTIONS",
    "OPTIONS",
    "Option",
    "check_pinned",
    "document_pages",
    "options_for",
    "parse_options",
    "parse_pages",
    "split_options",
    "task_schema",
]

_DET = frozenset({"textdet", "e2e"})
_ALL = frozenset({"textdet", "textrecog", "e2e"})


@dataclass(frozen=True)
class Option:
    """One option: its name, value type, bounds, and the tasks that take it."""

    name: str
    kind: type
    description: str
    tasks: frozenset[str]
    minimum: float | None = None
    maximum: float | None = None
    #: The values a string option may take (None: any).
    choices: tuple[str, ...] | None = None

    def schema(self) -> dict[str, Any]:
        """The option's JSON schema (OpenAPI 3.0 subset)."""
        kinds = {float: "number", int: "integer", bool: "boolean", str: "string"}
        out: dict[str, Any] = {"type": kinds[self.kind], "description": self.description}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.name == "pages":
            out["pattern"] = _PAGES_PATTERN
        if self.choices is not None:
            out["enum"] = list(self.choices)
        return out


_PAGES_PATTERN = r"^\s*[0-9]+(\s*-\s*[0-9]+)?(\s*,\s*[0-9]+(\s*-\s*[0-9]+)?)*\s*$"

#: Every option, in the order the documentation lists them.
OPTIONS: tuple[Option, ...] = (
    Option(
        "box_score_threshold",
        float,
        "Text boxes scoring under this are dropped. It replaces the detector's own box score "
        "threshold where it has one (PP-OCR DB box_thresh, MMOCR DBNet min_text_score, PANet "
        "and PSENet min_text_avg_confidence), so it can find more boxes as well as fewer; "
        "for other detectors it only filters their boxes.",
        _DET,
        0.0,
        1.0,
    ),
    Option(
        "max_side",
        int,
        "Images whose longer side exceeds this many pixels are scaled down to it before "
        "detection (boxes still come in the image's own pixels; crops for recognition are cut "
        "from the full image).",
        _DET,
        32,
        16384,
    ),
    Option(
        "drop_score",
        float,
        "Lines whose text score is under this are left out of the answer.",
        frozenset({"e2e"}),
        0.0,
        1.0,
    ),
    Option(
        "detect_only",
        bool,
        "Only detect: lines come with box and box_score, no text (the recognizer is not run).",
        frozenset({"e2e"}),
    ),
    Option(
        "char_scores",
        bool,
        "Also return each character's score (char_scores, one number per character of text).",
        frozenset({"textrecog", "e2e"}),
    ),
    Option(
        "reading_order",
        str,
        "The order of the lines: 'columns' reads a page's columns one after another (an XY-cut "
        "on the line boxes; the default for PDF and TIFF pages), 'rows' goes top to bottom and "
        "left to right along each row (PaddleOCR's order; the default for images).",
        frozenset({"e2e"}),
        choices=("rows", "columns"),
    ),
    Option(
        "orientation",
        bool,
        "Decide the page's orientation from all its lines first: a page on its side or upside "
        "down is turned upright (by 90, 180 or 270 degrees clockwise, given in the answer's "
        "'rotation'; boxes stay in the pixels sent) and no line of the page's direction is "
        "turned on its own. On by default for PDF and TIFF pages; off for images, whose lines "
        "the angle classifier turns one by one.",
        frozenset({"e2e"}),
    ),
    Option(
        "dpi",
        int,
        "PDF input: the resolution pages are rendered at (default: the server's pdf_dpi).",
        _ALL,
        36,
        600,
    ),
    Option(
        "pages",
        str,
        "PDF or multi-page TIFF input: the pages to read, from 1, e.g. '1-3,5' (default: all).",
        _ALL,
    ),
    Option(
        "text_layer",
        str,
        "PDF input: 'auto' (default) answers a born-digital page from its own text layer "
        '(exact text, boxes from the PDF, lines marked "source": "text_layer") when that '
        "layer is visible, mapped to Unicode and covers the page, and OCRs the other pages; "
        "'ocr' OCRs every page; 'only' never OCRs (pages without a usable layer have no lines).",
        frozenset({"e2e"}),
        choices=("auto", "ocr", "only"),
    ),
    Option(
        "page_image",
        bool,
        "PDF or multi-page TIFF input: each page's entry also carries the page as the model "
        "saw it, a JPEG data URI in 'image' (longer side at most 1280 px), for viewers.",
        _ALL,
    ),
    Option(
        "format",
        str,
        "The answer's form: 'json' (default), 'text' (lines in reading order, a blank line "
        "between blocks, a form feed between pages), 'hocr' (hOCR 1.2), 'alto' (ALTO 4 XML), "
        "'pdf' (PDF input only: the PDF sent with an invisible, selectable text layer). "
        "The Accept header may choose it too; this option wins.",
        frozenset({"e2e"}),
        choices=("json", "text", "hocr", "alto", "pdf"),
    ),
)

_BY_NAME = {o.name: o for o in OPTIONS}

#: Options that the document reader (PDF, multi-page TIFF) takes, not the model.
DOCUMENT_OPTIONS = frozenset({"dpi", "pages", "text_layer", "page_image"})

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def options_for(task: str) -> dict[str, Option]:
    """The options a model of ``task`` takes, by name."""
    return {o.name: o for o in OPTIONS if task in o.tasks}


def task_schema(task: str, pinned: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON schema of ``task``'s options; a pinned option is shown with its one value."""
    properties = {}
    for name, option in options_for(task).items():
        schema = option.schema()
        if pinned and name in pinned:
            schema = {**schema, "enum": [pinned[name]], "description": "Pinned by the archive."}
        properties[name] = schema
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _coerce(option: Option, value: Any) -> Any:
    name, kind = option.name, option.kind
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise InvalidInput(f"Option '{name}' must be true or false, not {value!r}.")
    if kind is str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise InvalidInput(f"Option '{name}' must be a string, not {value!r}.")
        if name == "pages":
            parse_pages(value)
        if option.choices is not None and value.strip() not in option.choices:
            allowed = ", ".join(option.choices)
            raise InvalidInput(f"Option '{name}' must be one of {allowed}, not {value!r}.")
        return value.strip()
    number: float | int
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidInput(f"Option '{name}' must be a number, not {value!r}.")
    try:
        if kind is int:
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                value = int(value)
            number = int(value)
        else:
            number = float(value)
    except (ValueError, OverflowError):
        what = "an integer" if kind is int else "a number"
        raise InvalidInput(f"Option '{name}' must be {what}, not {value!r}.") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise InvalidInput(f"Option '{name}' must be a finite number, not {value!r}.")
    lo, hi = option.minimum, option.maximum
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise InvalidInput(f"Option '{name}' must be between {lo:g} and {hi:g}, not {value!r}.")
    return number


def parse_options(
    task: str, raw: Mapping[str, Any], pinned: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The typed options of a request to a ``task`` model, with the archive's pinned ones.

    Raises `InvalidInput` (400) naming the option that is unknown for the task, of the wrong
    type, out of range, or pinned by the archive to another value.
    """
    allowed = options_for(task)
    pinned = dict(pinned or {})
    out: dict[str, Any] = {}
    for name, value in raw.items():
        option = allowed.get(name)
        if option is None:
            known = ", ".join(sorted(allowed))
            article = "an" if task[0] in "aeiou" else "a"
            raise InvalidInput(
                f"Unknown option '{name}' for {article} {task} model (options: {known})."
            )
        typed = _coerce(option, value)
        if name in pinned and typed != pinned[name]:
            raise InvalidInput(
                f"Option '{name}' is pinned to {pinned[name]!r} by the model's archive."
            )
        out[name] = typed
    return {**pinned, **out}


def check_pinned(task: str, pinned: Mapping[str, Any]) -> dict[str, Any]:
    """Options an archive pins, typed and checked like a request's (for the archivers)."""
    return parse_options(task, pinned)


def split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(document options, model options)``."""
    document = {k: v for k, v in options.items() if k in DOCUMENT_OPTIONS}
    model = {k: v for k, v in options.items() if k not in DOCUMENT_OPTIONS}
    return document, model


def parse_pages(spec: str) -> list[tuple[int, int]]:
    """``'1-3,5'`` -> ``[(1, 3), (5, 5)]``: page ranges from 1, both ends included."""
    if len(spec) > 200 or not re.fullmatch(_PAGES_PATTERN, spec):
        raise InvalidInput(f"Option 'pages' must look like '1-3,5', not {spec!r}.")
    ranges = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        a, b = int(first), int(last or first)
        if a < 1 or b < a:
            raise InvalidInput(f"Option 'pages' has an empty or invalid range {part.strip()!r}.")
        ranges.append((a, b))
    return ranges


#: How the documents a request may carry start: a PDF, a TIFF (either byte order).
_DOCUMENT_MAGIC = (b"%PDF-", b"II*\x00", b"MM\x00*")


def document_pages(body: bytes, options: Mapping[str, Any], max_pages: int) -> int:
    """How many pages a request may make a model read: 1 for an image; for a PDF or TIFF the
    pages its ``pages`` option selects, else ``max_pages`` (its page count is not known before
    a worker opens it)."""
    if not body.startswith(_DOCUMENT_MAGIC):
        return 1
    spec = options.get("pages")
    if isinstance(spec, str) and spec:
        selected = {n for a, b in parse_pages(spec) for n in range(a, min(b, a + max_pages) + 1)}
        return max(1, min(len(selected), max_pages))
    return max(1, max_pages)
