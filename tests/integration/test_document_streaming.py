"""Documents served as documents, on a real server with the bundled end-to-end ``ocr`` model:
the response timeout applies to each page (a 50-page PDF is answered at the defaults; a page
that cannot be read in time carries its error and the others come), pages streamed as
newline-delimited JSON as they are read, and a client that goes away frees the worker."""

from __future__ import annotations

import io
import json
import random
import socket
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image, ImageFilter

from tests.conftest import ServerProcess
from tests.documents import pdf_of, raw_pdf, text_page, tiff_of

NDJSON = {"accept": "application/x-ndjson"}
WORDS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL", "INDIA"]


def _scanned(text: str, seed: int) -> Image.Image:
    """A page as a scanner gives it: grey paper, a slight skew, blur and speckles."""
    rng = random.Random(seed)
    page = text_page(text).convert("L").rotate(rng.uniform(-2, 2), fillcolor=235)
    page = page.filter(ImageFilter.GaussianBlur(0.8))
    pixels = page.load()
    assert pixels is not None
    for _ in range(400):
        x, y = rng.randrange(page.width), rng.randrange(page.height)
        pixels[x, y] = rng.choice((90, 200))
    return page.convert("RGB")


def _small(img: Image.Image) -> Image.Image:
    return img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)


def _joined(*pdfs: bytes) -> bytes:
    """One PDF holding the pages of ``pdfs`` in order (PDFium's page import)."""
    import pypdfium2 as pdfium

    out = pdfium.PdfDocument.new()
    for data in pdfs:
        out.import_pages(pdfium.PdfDocument(data))
    buf = io.BytesIO()
    out.save(buf)
    return buf.getvalue()


def _heavy_page(strokes: int = 1_000_000) -> bytes:
    """One page of ``strokes`` separately stroked lines, Flate-compressed: tens of KB to send,
    about half a minute to draw on one core."""
    content = b"1 w\n" + b"".join(
        b"%d %d m %d %d l S\n" % (i % 10, i % 9, 400 - i % 8, 160 - i % 7) for i in range(strokes)
    )
    packed = zlib.compress(content, 9)
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (
        len(packed), packed,
    )  # fmt: skip
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 160] /Contents 4 0 R >>",
        stream,
    ])  # fmt: skip


def _texts(page: dict[str, Any]) -> str:
    return " ".join(line["text"] for line in page.get("result", []))


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The defaults (response timeout 120 s, 50 pages at most) but for the ports."""
    server = ServerProcess(tmp_path_factory.mktemp("docs"), "--models", "ocr")
    try:
        server.wait_healthy()
        yield server
    finally:
        assert server.stop() == 0


def test_fifty_pages_at_the_defaults_each_in_order(srv: ServerProcess) -> None:
    images = [
        _small(_scanned(WORDS[k % len(WORDS)], k) if k % 5 == 4 else text_page(WORDS[k % 9]))
        for k in range(50)
    ]
    resp = httpx.put(f"{srv.url}/predictions/ocr", content=pdf_of(images, dpi=75), timeout=900)
    assert resp.status_code == 200, resp.text
    pages = resp.json()["pages"]
    assert [p["page"] for p in pages] == list(range(1, 51))
    assert [_texts(p) for p in pages] == [WORDS[k % 9] for k in range(50)]
    assert all(p["done_at"] <= q["done_at"] for p, q in zip(pages, pages[1:]))
    assert all(p["time_ms"] > 0 for p in pages)


def test_pages_stream_as_they_are_read(srv: ServerProcess) -> None:
    pdf = pdf_of([text_page(w) for w in WORDS[:4]])
    arrived = []
    with httpx.stream(
        "PUT", f"{srv.url}/predictions/ocr", content=pdf, headers=NDJSON, timeout=300
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/x-ndjson"
        assert resp.headers["x-page-count"] == "4"
        assert "content-length" not in resp.headers  # chunked: sent as it is made
        lines = []
        for line in resp.iter_lines():
            arrived.append(time.time())
            lines.append(json.loads(line))
    assert [p["page"] for p in lines] == [1, 2, 3, 4]
    assert [_texts(p) for p in lines] == WORDS[:4]
    # The first page reached the client before the server had read the last one (the server's
    # own clock: same machine).
    assert arrived[0] < lines[-1]["done_at"], (arrived, [p["done_at"] for p in lines])


def test_a_multi_page_tiff_streams_too(srv: ServerProcess) -> None:
    tiff = tiff_of([text_page(w) for w in WORDS[:2]])
    resp = httpx.put(f"{srv.url}/predictions/ocr", content=tiff, headers=NDJSON, timeout=300)
    assert resp.status_code == 200, resp.text
    lines = [json.loads(line) for line in resp.text.splitlines()]
    assert [(p["page"], _texts(p)) for p in lines] == [(1, "ALPHA"), (2, "BRAVO")]


def test_an_image_streams_as_one_line_and_errors_before_pages_are_answers(
    srv: ServerProcess,
) -> None:
    png = io.BytesIO()
    text_page("KILO").save(png, "PNG")
    resp = httpx.put(
        f"{srv.url}/predictions/ocr", content=png.getvalue(), headers=NDJSON, timeout=120
    )
    assert resp.status_code == 200, resp.text
    (line,) = resp.text.splitlines()
    assert _texts(json.loads(line)) == "KILO"
    ignored = httpx.put(f"{srv.url}/predictions/ocr?pages=5&dpi=300", content=png.getvalue())
    assert ignored.status_code == 400, ignored.text  # not silently ignored: named
    assert "Option 'dpi', 'pages' applies to PDF and TIFF input only" in ignored.json()["message"]
    bad = httpx.put(
        f"{srv.url}/predictions/ocr", content=b"%PDF-1.7 broken", headers=NDJSON, timeout=60
    )
    assert bad.status_code == 400 and bad.json()["type"] == "BadRequestException", bad.text
    resp = httpx.put(
        f"{srv.url}/predictions/ocr?pages=9",
        content=pdf_of([text_page("A")]),
        headers=NDJSON,
        timeout=60,
    )
    assert resp.status_code == 400 and "asks for page 9" in resp.json()["message"]


def _stream_then_hang_up(url: str, pdf: bytes, keep: int) -> list[dict[str, Any]]:
    """Send ``pdf`` asking for pages as they are read, take ``keep`` of them, then close the
    connection (a raw socket: what a browser tab closed mid-way does)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    head = (
        f"PUT /predictions/ocr HTTP/1.1\r\nHost: {host}\r\nAccept: application/x-ndjson\r\n"
        f"Content-Type: application/pdf\r\nContent-Length: {len(pdf)}\r\n\r\n"
    )
    sock.sendall(head.encode() + pdf)
    reader = sock.makefile("rb")
    pages: list[dict[str, Any]] = []
    while len(pages) < keep:
        line = reader.readline()
        assert line, "the server closed the stream"
        text = line.strip()
        if text.startswith(b"{"):  # chunk sizes and headers are not pages
            pages.append(json.loads(text))
    reader.close()
    sock.close()
    return pages


def test_a_client_that_goes_away_frees_the_worker(srv: ServerProcess) -> None:
    pdf = pdf_of([text_page(WORDS[k % 9]) for k in range(12)])
    seen = _stream_then_hang_up(srv.url, pdf, keep=2)
    gone = time.time()
    assert [p["page"] for p in seen] == [1, 2]
    page_s = max(p["time_ms"] for p in seen) / 1000
    png = io.BytesIO()
    text_page("LIMA").save(png, "PNG")
    resp = httpx.put(f"{srv.url}/predictions/ocr", content=png.getvalue(), timeout=300)
    assert resp.status_code == 200 and _texts(resp.json()) == "LIMA"
    # The worker finished at most the page it was reading: the 10 pages left would take ten
    # page times, the page in hand and this image about two.
    took = time.time() - gone
    assert took < 4 * page_s + 1.0, (took, page_s)


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A response timeout of 8 s: a page that takes a minute to draw cannot be read in time."""
    server = ServerProcess(
        tmp_path_factory.mktemp("impatient"), "--models", "ocr",
        "--default-response-timeout", "8",
    )  # fmt: skip
    try:
        server.wait_healthy()
        yield server
    finally:
        assert server.stop() == 0


def test_a_page_that_cannot_finish_in_time_carries_its_error(impatient: ServerProcess) -> None:
    heavy = _heavy_page()
    pdf = _joined(pdf_of([text_page("ALPHA")]), heavy, pdf_of([text_page(w) for w in WORDS[1:4]]))
    resp = httpx.put(f"{impatient.url}/predictions/ocr", content=pdf, timeout=300)
    assert resp.status_code == 200, resp.text
    pages = resp.json()["pages"]
    assert [p["page"] for p in pages] == [1, 2, 3, 4, 5]
    assert pages[1]["error"]["code"] == 504, pages[1]
    assert "Page 2 was not read within 8 s" in pages[1]["error"]["message"]
    others = [p for i, p in enumerate(pages) if i != 1]
    assert [_texts(p) for p in others] == ["ALPHA", *WORDS[1:4]], others
    # Streamed, the same: the error in its page's line, the next pages after it.
    with httpx.stream(
        "PUT", f"{impatient.url}/predictions/ocr", content=pdf, headers=NDJSON, timeout=300
    ) as streamed:
        lines = [json.loads(line) for line in streamed.iter_lines()]
    assert [p["page"] for p in lines] == [1, 2, 3, 4, 5]
    assert "error" in lines[1] and all("error" not in p for i, p in enumerate(lines) if i != 1)


def test_a_single_image_timeout_names_the_setting(impatient: ServerProcess) -> None:
    """A one-page document whose page times out is that page's error, with what to raise."""
    resp = httpx.put(f"{impatient.url}/predictions/ocr", content=_heavy_page(), timeout=300)
    assert resp.status_code == 504, resp.text
    assert "responseTimeout" in resp.json()["message"], resp.text


# -- born-digital pages: their own text layer ---------------------------------------------------


def _ink_box(ink: Any, box: list[float], grow: int = 4) -> tuple[int, int, int, int]:
    """The bounding box of the dark pixels of ``ink`` inside ``box`` grown by ``grow`` px."""
    import numpy as np

    x0, y0 = max(0, int(min(box[0::2])) - grow), max(0, int(min(box[1::2])) - grow)
    x1, y1 = int(max(box[0::2])) + grow + 1, int(max(box[1::2])) + grow + 1
    ys, xs = np.nonzero(ink[y0:y1, x0:x1])
    return x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1


def test_born_digital_pages_are_read_from_their_text_layer(srv: ServerProcess) -> None:
    import numpy as np
    import pypdfium2 as pdfium

    from tests.text_layer_pdfs import Line, PdfPage, Picture, letter_page, pdf

    junk_layer = PdfPage(  # another tool's OCR layer, invisible and wrong, over a scan
        [Line("Sa l s s l s les", 19, 700, 27, mode=3)],
        [Picture(text_page("HELLO WORLD", (1275, 1650)), (0, 0, 612, 792))],
    )
    data = _joined(pdf([letter_page()]), pdf_of([text_page("BRAVO")]), pdf([junk_layer]))
    resp = httpx.put(f"{srv.url}/predictions/ocr", content=data, timeout=300)
    assert resp.status_code == 200, resp.text
    letter, scan, junk = resp.json()["pages"]
    assert [line["text"] for line in letter["result"]] == [
        "Invoice 2024-117",
        "Dear Ms. Lef\u00e8vre,",
        "thank you for your order of 12 May (ref. A/77).",
        "The total, \u20ac 1,250.00, is due within 30 days.",
        "Kind regards,",
        "Ocrserve GmbH",
    ]
    assert all(line["source"] == "text_layer" for line in letter["result"])
    assert letter["text_layer"]["used"] is True
    # The boxes sit on the glyphs as drawn at the page's resolution (150 dpi), within 2 px.
    page = pdfium.PdfDocument(data)[0]
    rendered = page.render(scale=150 / 72).to_numpy()
    assert rendered.shape[:2] == (letter["height"], letter["width"])
    ink = rendered.min(axis=2) < 160
    for line in letter["result"]:
        box = line["box"]
        found = _ink_box(ink, box)
        ours = (min(box[0::2]), min(box[1::2]), max(box[0::2]), max(box[1::2]))
        assert np.allclose(found, ours, atol=2), (line["text"], found, ours)
    # A page that is a picture, and a picture under an invisible layer, are read by OCR.
    assert _texts(scan) == "BRAVO" and "source" not in scan["result"][0]
    assert scan["text_layer"] == {"used": False, "reason": "no text layer"}
    assert _texts(junk) == "HELLO WORLD", junk
    assert "invisible" in junk["text_layer"]["reason"]
    # text_layer=ocr reads the born-digital page by OCR too; only never OCRs.
    resp = httpx.put(f"{srv.url}/predictions/ocr?pages=1&text_layer=ocr", content=data, timeout=300)
    (ocred,) = resp.json()["pages"]
    assert "Invoice" in _texts(ocred) and "source" not in ocred["result"][0]
    assert "text_layer" not in ocred
    resp = httpx.put(f"{srv.url}/predictions/ocr?text_layer=only", content=data, timeout=300)
    only = resp.json()["pages"]
    assert [len(p["result"]) for p in only] == [6, 0, 0]
