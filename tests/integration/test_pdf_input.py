"""PDFs and multi-page TIFFs on a real server with the bundled end-to-end ``ocr`` model: every
page is read and answered in order, and hostile documents are refused before anything is
rendered, with the server and its worker unchanged after each."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ocrserve.client import Client, Document
from tests.conftest import ServerProcess
from tests.documents import (
    encrypted_pdf,
    heavy_page_pdf,
    huge_page_pdf,
    javascript_pdf,
    link_script_pdf,
    many_pages_pdf,
    pdf_of,
    text_page,
    tiff_of,
)

WORDS = ["ALPHA", "BRAVO", "CHARLIE"]
PDF = {"content-type": "application/pdf"}
MAX_PAGES = 4  # the server's max_pdf_pages, so that a 5-page PDF shows the setting at work
RENDER_S = 2  # its pdf_render_timeout: the heavy page takes about 10 s to render on one core


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path_factory.mktemp("pdf"), "--models", "ocr", "--max-pdf-pages", str(MAX_PAGES),
        "--pdf-render-timeout", str(RENDER_S),
    )  # fmt: skip
    try:
        server.wait_healthy()
        yield server
    finally:
        assert server.stop() == 0


def _predict(srv: ServerProcess, content: bytes, headers: dict[str, str] | None = None) -> Any:
    return httpx.put(f"{srv.url}/predictions/ocr", content=content, headers=headers, timeout=300)


def _worker_pids(srv: ServerProcess) -> list[int]:
    (desc,) = httpx.get(f"{srv.management_url}/models/ocr", timeout=30).json()
    assert all(w["status"] == "READY" for w in desc["workers"]), desc["workers"]
    return sorted(w["pid"] for w in desc["workers"])


def _texts(page: dict[str, Any]) -> str:
    return " ".join(line["text"] for line in page["result"])


def _check_pages(answer: dict[str, Any], words: list[str]) -> None:
    assert list(answer) == ["pages"], answer
    pages = answer["pages"]
    assert [p["page"] for p in pages] == list(range(1, len(words) + 1))
    assert [_texts(p) for p in pages] == words, pages
    for page in pages:  # the page as the model saw it: 640 x 240 image pixels at 150 dpi
        assert abs(page["width"] - 640) <= 1 and abs(page["height"] - 240) <= 1, page
        for line in page["result"]:
            xs, ys = line["box"][0::2], line["box"][1::2]
            assert 0 <= min(xs) and max(xs) <= page["width"], line
            assert 0 <= min(ys) and max(ys) <= page["height"], line


def test_three_page_pdf_gives_each_page_in_order(srv: ServerProcess) -> None:
    resp = _predict(srv, pdf_of([text_page(w) for w in WORDS]), PDF)
    assert resp.status_code == 200, resp.text
    _check_pages(resp.json(), WORDS)


@pytest.mark.parametrize(
    "headers",
    [None, {"content-type": "application/octet-stream"}, {"content-type": "image/png"}],
    ids=["no-content-type", "octet-stream", "mislabelled-png"],
)
def test_pdf_is_recognized_from_its_bytes(srv: ServerProcess, headers: Any) -> None:
    resp = _predict(srv, pdf_of([text_page("BRAVO")]), headers)
    assert resp.status_code == 200, resp.text
    _check_pages(resp.json(), ["BRAVO"])


def test_pdf_as_base64_json(srv: ServerProcess) -> None:
    data = base64.b64encode(pdf_of([text_page("ALPHA")])).decode()
    resp = httpx.post(f"{srv.url}/predictions/ocr", json={"data": data}, timeout=300)
    assert resp.status_code == 200, resp.text
    _check_pages(resp.json(), ["ALPHA"])


def test_two_page_tiff_gives_two_pages(srv: ServerProcess) -> None:
    resp = _predict(srv, tiff_of([text_page("BRAVO"), text_page("ALPHA")]))
    assert resp.status_code == 200, resp.text
    _check_pages(resp.json(), ["BRAVO", "ALPHA"])


def test_single_images_keep_their_answer_form(srv: ServerProcess) -> None:
    for content in (tiff_of([text_page("ALPHA")]), _png(text_page("ALPHA"))):
        resp = _predict(srv, content)
        assert resp.status_code == 200, resp.text
        assert list(resp.json()) == ["result"] and _texts(resp.json()) == "ALPHA"


def _png(img: Any) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _truncated_pdf() -> bytes:
    data = pdf_of([text_page(w) for w in WORDS])
    return data[: len(data) // 2]


TIFF = {"content-type": "image/tiff"}
HOSTILE = [
    pytest.param(encrypted_pdf, PDF, 400, "encrypted", id="encrypted"),
    pytest.param(_truncated_pdf, PDF, 400, "Cannot read the PDF", id="truncated"),
    pytest.param(
        lambda: b"%PDF-1.4\n" + b"\0" * 500, None, 400, "Cannot read the PDF", id="garbage"
    ),
    pytest.param(many_pages_pdf, PDF, 413, "10000 pages, over max_pdf_pages", id="10000-pages"),
    pytest.param(
        lambda: pdf_of([text_page(w) for w in WORDS + ["DELTA", "ECHO"]]),
        PDF, 413, "5 pages, over max_pdf_pages (4)", id="over-max-pdf-pages",
    ),
    pytest.param(huge_page_pdf, PDF, 413, "100000 x 100000 points", id="100000-points-page"),
    pytest.param(javascript_pdf, PDF, 400, "carries JavaScript (1 document-level", id="javascript"),
    pytest.param(
        link_script_pdf, None, 400, "carries JavaScript (/JS, /JavaScript in the file)",
        id="javascript-link-escaped-names",
    ),
    pytest.param(heavy_page_pdf, PDF, 413, f"pdf_render_timeout ({RENDER_S} s)", id="slow-page"),
    pytest.param(
        lambda: tiff_of([text_page(w) for w in WORDS + ["DELTA", "ECHO"]]),
        TIFF, 413, "5 pages, over max_pdf_pages (4)", id="tiff-over-max-pdf-pages",
    ),
]  # fmt: skip


@pytest.mark.parametrize("make,headers,status,reason", HOSTILE)
def test_hostile_document_is_refused_and_server_unchanged(
    srv: ServerProcess, make: Any, headers: Any, status: int, reason: str
) -> None:
    pids = _worker_pids(srv)
    started = time.monotonic()
    resp = _predict(srv, make(), headers)
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["code"] == status and reason in body["message"], body
    assert time.monotonic() - started < 10, "refused only after a long time"
    assert httpx.get(f"{srv.url}/ping", timeout=10).json() == {"status": "Healthy"}
    assert _worker_pids(srv) == pids, "the worker died or was replaced"


def test_body_declared_pdf_that_is_not_one_is_refused(srv: ServerProcess) -> None:
    resp = _predict(srv, _png(text_page("ALPHA")), PDF)
    assert resp.status_code == 400 and "%PDF-" in resp.json()["message"], resp.text


def test_kserve_v1_answers_each_instance_in_its_form(srv: ServerProcess) -> None:
    instances = [
        {"b64": base64.b64encode(data).decode()}
        for data in (pdf_of([text_page("ALPHA"), text_page("BRAVO")]), _png(text_page("ECHO")))
    ]
    resp = httpx.post(
        f"{srv.url}/v1/models/ocr:predict", json={"instances": instances}, timeout=300
    )
    assert resp.status_code == 200, resp.text
    document, image = resp.json()["predictions"]
    _check_pages(document, ["ALPHA", "BRAVO"])
    assert _texts(image) == "ECHO"


@pytest.mark.parametrize(
    "data",
    [pdf_of([text_page("ALPHA")]), tiff_of([text_page("ALPHA"), text_page("BRAVO")])],
    ids=["pdf", "multi-page-tiff"],
)
def test_kserve_v2_refuses_documents_with_400(srv: ServerProcess, data: bytes) -> None:
    tensor = {"name": "image", "datatype": "BYTES", "shape": [1],
              "data": [base64.b64encode(data).decode()]}  # fmt: skip
    resp = httpx.post(f"{srv.url}/v2/models/ocr/infer", json={"inputs": [tensor]}, timeout=300)
    assert resp.status_code == 400, resp.text
    assert "/predictions/{model}" in resp.json()["error"], resp.text


def test_client_gives_a_typed_document(srv: ServerProcess, tmp_path: Any) -> None:
    path = tmp_path / "two.pdf"
    path.write_bytes(pdf_of([text_page("ALPHA"), text_page("BRAVO")]))
    with Client(srv.url, timeout=300) as client:
        result = client.predict("ocr", path)
    assert isinstance(result, Document), result
    assert [(p.number, p.result.text) for p in result.pages] == [(1, "ALPHA"), (2, "BRAVO")]  # type: ignore[attr-defined]


def test_request_command_prints_each_page(
    srv: ServerProcess, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from ocrserve.cli import main

    path = tmp_path / "two.pdf"
    path.write_bytes(pdf_of([text_page("ALPHA"), text_page("BRAVO")]))
    assert main(["request", "ocr", str(path), "--url", srv.url]) == 0
    out = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert out == ["--- page 1 ---", "ALPHA", "--- page 2 ---", "BRAVO"]
