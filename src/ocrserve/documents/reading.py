"""A document's pages through a predictor, one page at a time.

Each page becomes one entry ``{"page", "width", "height", "time_ms", "done_at", ...}`` with the
model's answer for it, or its ``"error"`` (TorchServe's error JSON): a page that cannot be
read fails alone. A born-digital PDF page of an end-to-end model may be answered from its own
text layer (the ``text_layer`` option, `ocrserve.documents.text_layer`), without rendering it.
Only one page's pixels are held at a time.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ocrserve.documents.source import PageSource
from ocrserve.errors import InternalServerError, OcrServeError

__all__ = [
    "PAGE_DEFAULTS",
    "PAGE_IMAGE_SIDE",
    "TEXT_LAYER_MODES",
    "error_entry",
    "read_page",
    "read_pages",
]

#: The longer side of the page image a request gets with ``page_image`` (a preview to draw on).
PAGE_IMAGE_SIDE = 1280
#: ``text_layer``: ``auto`` answers a page from its text layer when that layer is usable, else
#: OCRs it; ``ocr`` always OCRs; ``only`` never OCRs (a page without a usable layer has no lines).
TEXT_LAYER_MODES = ("auto", "ocr", "only")

#: The options an end-to-end model reads a document's pages with unless the request says
#: otherwise: columns one after another, and the page's orientation decided from all its lines
#: (docs/outputs.md has the measurements that chose them).
PAGE_DEFAULTS: dict[str, Any] = {"reading_order": "columns", "orientation": True}

#: ``emit(entry)``, called with each page's entry as soon as it is done.
Emit = Callable[[dict[str, Any]], None]


def error_entry(exc: BaseException) -> dict[str, Any]:
    """TorchServe's ``{"code", "type", "message"}`` for a page's error."""
    if isinstance(exc, OcrServeError):
        return exc.to_json()
    return InternalServerError(f"{type(exc).__name__}: {exc}").to_json()


def _page_image(page: np.ndarray) -> str:
    """The page as a JPEG ``data:`` URI, its longer side at most `PAGE_IMAGE_SIDE`."""
    import cv2

    from ocrserve.imaging import shrink_to

    ok, jpeg = cv2.imencode(
        ".jpg", shrink_to(page, PAGE_IMAGE_SIDE), [cv2.IMWRITE_JPEG_QUALITY, 80]
    )
    if not ok:
        raise InternalServerError("Cannot encode the page image.")
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii")


def _from_text_layer(
    source: PageSource, k: int, mode: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``(answer, decision)``: the page's answer from its text layer, or None when it must be
    OCRed; and what was decided (``{"used", "reason"}``; None when the layer was not read)."""
    from ocrserve.documents.pdf import PdfPages
    from ocrserve.documents.text_layer import read_text_layer

    if mode == "ocr" or not isinstance(source, PdfPages):
        return None, None
    layer = read_text_layer(source.doc, source.numbers[k] - 1, source.scale)
    decision = {"used": layer.usable, "reason": layer.reason}
    if not layer.usable and mode == "auto":
        return None, decision
    width, height = source.size(k)
    lines = layer.lines if layer.usable else []
    return {"width": width, "height": height, "result": lines}, decision


def read_page(
    predictor: Any,
    source: PageSource,
    k: int,
    model_options: Mapping[str, Any],
    *,
    text_layer: str = "ocr",
    page_image: bool = False,
) -> dict[str, Any]:
    """The entry of the k-th selected page of ``source`` (never raises: an error is its entry)."""
    from ocrserve.predictor import predict_with

    started = time.monotonic()
    entry: dict[str, Any] = {"page": source.numbers[k]}
    try:
        answer, decision = None, None
        if predictor.task == "e2e":
            answer, decision = _from_text_layer(source, k, text_layer)
        if answer is not None and not page_image:
            entry.update(answer)
        else:
            page = source.render(k)
            height, width = page.shape[:2]
            entry.update(width=int(width), height=int(height))
            if answer is None:
                options = model_options
                if predictor.task == "e2e":
                    options = {**PAGE_DEFAULTS, **model_options}
                (result,) = predict_with(predictor, [page], options)
                entry.update(result if isinstance(result, dict) else {"result": result})
            else:
                entry.update(answer)
            if page_image:
                entry["image"] = _page_image(page)
            del page
        if decision is not None:
            entry["text_layer"] = decision
    except Exception as exc:  # the page fails alone
        if "width" not in entry:
            width, height = source.size(k)
            entry.update(width=width, height=height)
        entry["error"] = error_entry(exc)
    entry["time_ms"] = round((time.monotonic() - started) * 1000, 1)
    entry["done_at"] = round(time.time(), 4)
    return entry


def read_pages(
    predictor: Any,
    source: PageSource,
    model_options: Mapping[str, Any],
    emit: Emit,
    *,
    text_layer: str = "ocr",
    page_image: bool = False,
    cancelled: Callable[[], bool] = lambda: False,
) -> int:
    """Every selected page, in order, each ``emit``-ted when done; stops early (before a page)
    once ``cancelled()``. The number of pages read."""
    done = 0
    for k in range(len(source.numbers)):
        if cancelled():
            break
        emit(
            read_page(
                predictor, source, k, model_options, text_layer=text_layer, page_image=page_image
            )
        )
        done += 1
    return done
