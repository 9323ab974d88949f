"""The worker process: its own settings (threads), and how it answers a batch that holds
documents (pages followed as they are read, a page failing alone, cancels between pages)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from ocrserve.errors import InvalidInput
from ocrserve.settings import InputLimits
from tests.documents import pdf_of, text_page, tiff_of


def test_worker_threads_wait_passively(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrserve.server.worker import limit_threads

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "0")
    limit_threads(3)
    import os

    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "3"
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # a user's own choice stays
    limit_threads(3)
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


# -- a batch with documents: their pages followed as they are read --------------------------


class InkCounter:
    """A predictor that measures what it is given (the share of dark pixels of each image), so
    each page's answer is the page's own; an image whose dark share is over ``fail_over`` fails
    (a page the model cannot read)."""

    task = "textdet"
    exif_orientation = True

    def __init__(self, fail_over: float = 1.0) -> None:
        self.fail_over = fail_over
        self.seen = 0

    def predict(self, images: list[Any], options: Any = None) -> list[dict[str, Any]]:
        out = []
        for image in images:
            self.seen += 1
            ink = float((image < 128).mean())
            if ink > self.fail_over:
                raise InvalidInput(f"too much ink ({ink:.2f})")
            out.append({"ink": round(ink, 4), "size": list(image.shape[:2])})
        return out


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_documents_are_followed_page_by_page() -> None:
    from ocrserve.server.worker import _answer

    pdf = pdf_of([text_page("A"), text_page("BB"), text_page("CCC")])
    frames: list[dict[str, Any]] = []
    answers = _answer(
        InkCounter(), [_png(text_page("X")), pdf], InputLimits(), [{}, {"pages": "2-3"}],
        frames.append,
    )  # fmt: skip
    assert [f["event"] for f in frames] == ["answer", "document", "page", "page"]
    assert frames[0]["index"] == 0 and frames[0]["answer"]["ok"]["ink"] > 0
    assert frames[1] == {"event": "document", "index": 1, "pages": [2, 3]}
    pages = [f["page"] for f in frames[2:]]
    assert [p["page"] for p in pages] == [2, 3]
    assert pages[0]["ink"] < pages[1]["ink"]  # CCC has more ink than BB
    assert all(p["time_ms"] >= 0 and p["done_at"] > 0 for p in pages)
    assert (pages[0]["width"], pages[0]["height"]) == (641, 240)
    assert answers == [{"sent": True}, {"pages_sent": 2}]


def test_without_events_a_document_answer_holds_its_pages() -> None:
    from ocrserve.server.worker import _answer

    (answer,) = _answer(InkCounter(), [tiff_of([text_page("A"), text_page("B")])], InputLimits())
    assert [p["page"] for p in answer["ok"]["pages"]] == [1, 2]


def test_a_page_that_fails_fails_alone_and_a_cancel_stops_the_rest() -> None:
    from ocrserve.server.worker import _answer

    pdf = pdf_of([text_page("A"), Image.new("RGB", (200, 100), "black"), text_page("C")])
    (answer,) = _answer(InkCounter(fail_over=0.5), [pdf], InputLimits())
    pages = answer["ok"]["pages"]
    assert [("error" in p) for p in pages] == [False, True, False]
    assert pages[1]["error"] == {
        "code": 400, "type": "BadRequestException", "message": "too much ink (1.00)",
    }  # fmt: skip
    assert (pages[1]["width"], pages[1]["height"]) == (200, 100)
    predictor, frames = InkCounter(), []
    cancelled = lambda index: len(frames) >= 2  # noqa: E731 - after the document and page 1
    _answer(predictor, [pdf], InputLimits(), None, frames.append, cancelled)
    assert [f["event"] for f in frames] == ["document", "page"] and predictor.seen == 1
