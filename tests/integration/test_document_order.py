"""Reading order and page orientation on a real server with the bundled ``ocr`` model: a PDF's
two-column page comes column by column and its page turned a quarter reads the same, with the
turn in the answer; an image keeps rows unless asked; the options are checked like the others."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import ServerProcess, running
from tests.documents import pdf_of
from tests.unit.documents.test_page_reading import LEFT, RIGHT, two_column_page


def _texts(answer: dict[str, Any]) -> list[str]:
    return [line["text"] for line in answer.get("result", [])]


def _squeezed(texts: list[str]) -> list[str]:
    """Without spaces: the PDF holds the pages as JPEG, whose blocks differ once turned, and
    a narrow word gap may then be missed."""
    return [t.replace(" ", "") for t in texts]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running(ServerProcess(tmp_path_factory.mktemp("order"), "--models", "ocr"))


def test_a_pdf_reads_columns_and_turns_pages_upright(srv: ServerProcess) -> None:
    page = two_column_page()
    pdf = pdf_of([page, page.transpose(Image.Transpose.ROTATE_270)])
    resp = httpx.put(f"{srv.url}/predictions/ocr?text_layer=ocr", content=pdf, timeout=300)
    assert resp.status_code == 200, resp.text
    pages = resp.json()["pages"]
    assert [_squeezed(_texts(p)) for p in pages] == [_squeezed(LEFT + RIGHT)] * 2
    assert [p["rotation"] for p in pages] == [0, 270]
    assert (pages[1]["width"], pages[1]["height"]) == (page.height, page.width)


def test_an_image_keeps_rows_unless_asked(srv: ServerProcess) -> None:
    buf = io.BytesIO()
    two_column_page().save(buf, "PNG")
    resp = httpx.put(f"{srv.url}/predictions/ocr", content=buf.getvalue(), timeout=300)
    assert resp.status_code == 200, resp.text
    assert _texts(resp.json()) == [t for pair in zip(LEFT, RIGHT) for t in pair]
    assert "rotation" not in resp.json()
    asked = httpx.put(
        f"{srv.url}/predictions/ocr?reading_order=columns&orientation=true",
        content=buf.getvalue(),
        timeout=300,
    )
    assert asked.status_code == 200, asked.text
    assert _texts(asked.json()) == LEFT + RIGHT and asked.json()["rotation"] == 0
    bad = httpx.put(
        f"{srv.url}/predictions/ocr?reading_order=zigzag", content=buf.getvalue(), timeout=60
    )
    assert bad.status_code == 400 and "reading_order" in bad.json()["message"]
