"""Document outputs on a real server with the bundled end-to-end ``ocr`` model: ``format``
(or ``Accept``) turns the answer into plain text, hOCR, ALTO, or the searchable PDF, for an
image and for PDFs made here (3 scanned pages, one of two words)."""

from __future__ import annotations

import io
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pikepdf
import pytest

from tests.conftest import ServerProcess
from tests.documents import pdf_of, text_page
from tests.text_layer_pdfs import letter_page, ocr_layer_page
from tests.text_layer_pdfs import pdf as born_digital_pdf

WORDS = ["ALPHA BRAVO", "CHARLIE", "DELTA"]
PDF = {"content-type": "application/pdf"}
HTML = "{http://www.w3.org/1999/xhtml}"
ALTO = "{http://www.loc.gov/standards/alto/ns-v4#}"
SCALE = 150 / 72  # pdf_dpi's pixels per point
#: A page's start, or a word and its box, in ``pdftotext -bbox``'s output.
BBOX_WORD = re.compile(
    r'<page |<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("outputs"), "--models", "ocr")
    try:
        server.wait_healthy()
        yield server
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def scanned() -> bytes:
    return pdf_of([text_page(w) for w in WORDS])


@pytest.fixture(scope="module")
def image() -> bytes:
    buf = io.BytesIO()
    text_page("ALPHA BRAVO").save(buf, "PNG")
    return buf.getvalue()


def _put(srv: ServerProcess, body: bytes, params: Any = None, **headers: str) -> httpx.Response:
    return httpx.put(f"{srv.url}/predictions/ocr", content=body, params=params,
                     headers=headers, timeout=300)  # fmt: skip


def _json(srv: ServerProcess, body: bytes) -> list[dict[str, Any]]:
    """The JSON answer's pages (an image's answer as one page)."""
    resp = _put(srv, body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    return answer["pages"] if "pages" in answer else [answer]


def _bbox(title: str) -> list[int]:
    match = re.search(r"bbox (\d+) (\d+) (\d+) (\d+)", title)
    assert match, title
    return [int(v) for v in match.groups()]


def test_text_of_an_image_and_a_pdf(srv: ServerProcess, image: bytes, scanned: bytes) -> None:
    resp = _put(srv, image, {"format": "text"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert resp.text == "ALPHA BRAVO\n"
    resp = _put(srv, scanned, {"format": "text"}, **PDF)
    assert resp.status_code == 200, resp.text
    assert resp.text == "\n\f".join(WORDS) + "\n"
    assert _put(srv, image, accept="text/plain").text == "ALPHA BRAVO\n"


def _check_hocr(body: bytes, pages: list[dict[str, Any]]) -> None:
    root = ET.fromstring(body)  # well-formed XHTML
    found = root.iter(f"{HTML}div")
    divs = [d for d in found if d.get("class") == "ocr_page"]
    assert len(divs) == len(pages)
    for n, (div, page) in enumerate(zip(divs, pages)):
        title = div.get("title", "")
        width, height = page.get("width", 640), page.get("height", 240)
        assert title.startswith(f"bbox 0 0 {width} {height}; ppageno {n}"), title
        lines = [s for s in div.iter(f"{HTML}span") if s.get("class") == "ocr_line"]
        assert [ln for ln in lines] and len(lines) == len(page["result"])
        for line, answer in zip(lines, page["result"]):
            lx0, ly0, lx1, ly1 = _bbox(line.get("title", ""))
            xs, ys = answer["box"][0::2], answer["box"][1::2]
            assert [lx0, ly0, lx1, ly1] == [round(min(xs)), round(min(ys)),
                                            round(max(xs)), round(max(ys))]  # fmt: skip
            found_words = [w for w in line if w.get("class") == "ocrx_word"]
            assert " ".join(w.text or "" for w in found_words) == answer["text"]
            for word in found_words:
                x0, y0, x1, y1 = _bbox(word.get("title", ""))
                assert lx0 <= x0 < x1 <= lx1 and ly0 <= y0 < y1 <= ly1
                assert re.search(r"x_wconf \d+", word.get("title", ""))


def test_hocr_of_an_image_and_a_pdf(srv: ServerProcess, image: bytes, scanned: bytes) -> None:
    for body, headers in ((image, {}), (scanned, PDF)):
        resp = _put(srv, body, {"format": "hocr"}, **headers)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "text/html; charset=utf-8"
        _check_hocr(resp.content, _json(srv, body))
    resp = _put(srv, image, accept="text/vnd.hocr+html")
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    resp = _put(srv, image, accept="text/html,application/xhtml+xml,*/*;q=0.8")  # a browser's
    assert resp.headers["content-type"] == "application/json", resp.headers


def _check_alto(body: bytes, pages: list[dict[str, Any]]) -> None:
    """ALTO 4's structure (no schema ships in a package here, so its rules are checked by
    hand): namespace, pixel units, Page > PrintSpace > TextBlock > TextLine > String/SP with
    positions inside their line, WC in 0-1, CONTENT giving the line's text."""
    root = ET.fromstring(body)
    assert root.tag == f"{ALTO}alto"
    assert root.findtext(f"{ALTO}Description/{ALTO}MeasurementUnit") == "pixel"
    found = root.findall(f"{ALTO}Layout/{ALTO}Page")
    assert len(found) == len(pages)
    for n, (page, answer) in enumerate(zip(found, pages), start=1):
        assert page.get("PHYSICAL_IMG_NR") == str(n) and page.get("ID")
        [space] = page.findall(f"{ALTO}PrintSpace")
        lines = space.findall(f"{ALTO}TextBlock/{ALTO}TextLine")
        assert len(lines) == len(answer["result"])
        for line, expected in zip(lines, answer["result"]):
            hpos, vpos = float(line.get("HPOS", -1)), float(line.get("VPOS", -1))
            right = hpos + float(line.get("WIDTH", -1))
            bottom = vpos + float(line.get("HEIGHT", -1))
            kinds = [child.tag.removeprefix(ALTO) for child in line]
            strings = line.findall(f"{ALTO}String")
            assert kinds == ["SP" if k % 2 else "String" for k in range(2 * len(strings) - 1)]
            assert " ".join(s.get("CONTENT", "") for s in strings) == expected["text"]
            for s in strings:
                x, y = float(s.get("HPOS", -1)), float(s.get("VPOS", -1))
                assert hpos - 0.1 <= x and x + float(s.get("WIDTH", -1)) <= right + 0.1
                assert vpos - 0.1 <= y and y + float(s.get("HEIGHT", -1)) <= bottom + 0.1
                assert 0 <= float(s.get("WC", -1)) <= 1


def test_alto_of_an_image_and_a_pdf(srv: ServerProcess, image: bytes, scanned: bytes) -> None:
    for body, headers in ((image, {}), (scanned, PDF)):
        resp = _put(srv, body, {"format": "alto"}, **headers)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "application/alto+xml"
        _check_alto(resp.content, _json(srv, body))
    resp = _put(srv, image, accept="application/alto+xml")
    assert resp.headers["content-type"] == "application/alto+xml"


def _pdftotext(pdf: bytes, tmp: Path, *args: str) -> str:
    path = tmp / "out.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", *args, str(path), "-"], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout


def test_searchable_pdf(srv: ServerProcess, scanned: bytes, tmp_path: Path) -> None:
    pages = _json(srv, scanned)
    resp = _put(srv, scanned, {"format": "pdf"}, **PDF)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/pdf"
    out = resp.content
    assert _pdftotext(out, tmp_path).split() == " ".join(WORDS).split()
    with pikepdf.open(io.BytesIO(scanned)) as a, pikepdf.open(io.BytesIO(out)) as b:
        assert len(a.pages) == len(b.pages) == 3
        for pa, pb in zip(a.pages, b.pages):
            ia, ib = pa.get_images(), pb.get_images()
            assert len(ia) == len(ib) == 1
            for (_, xa), (_, xb) in zip(ia.items(), ib.items()):
                assert xa.read_raw_bytes() == xb.read_raw_bytes()  # the scan, byte for byte
    # each word over its detected box, at the pages' 150 dpi (pdftotext's boxes are in points)
    per_page: list[list[tuple[str, list[float]]]] = []
    for match in BBOX_WORD.finditer(_pdftotext(out, tmp_path, "-bbox")):
        if match.group(0) == "<page ":
            per_page.append([])
        else:
            box = [float(v) * SCALE for v in match.groups()[:4]]
            per_page[-1].append((match.group(5), box))
    assert len(per_page) == 3
    for page, words in zip(pages, per_page):
        [line] = page["result"]
        xs, ys = line["box"][0::2], line["box"][1::2]
        assert [w for w, _ in words] == line["text"].split()
        assert words[0][1][0] == pytest.approx(min(xs), abs=3)  # the line's left end
        assert words[-1][1][2] == pytest.approx(max(xs), abs=3)  # its right end
        for _, (x0, y0, x1, y1) in words:
            assert y0 == pytest.approx(min(ys), abs=3) and y1 == pytest.approx(max(ys), abs=3)
            assert min(xs) - 3 <= x0 < x1 <= max(xs) + 3


def test_text_layer_pages_get_no_second_layer(srv: ServerProcess, tmp_path: Path) -> None:
    source = born_digital_pdf([letter_page(), ocr_layer_page()])
    resp = _put(srv, source, {"format": "pdf"}, **PDF)
    assert resp.status_code == 200, resp.text
    with pikepdf.open(io.BytesIO(source)) as a, pikepdf.open(io.BytesIO(resp.content)) as b:
        first_a, first_b = a.pages[0].obj.Contents, b.pages[0].obj.Contents
        assert first_a.read_raw_bytes() == first_b.read_raw_bytes()  # read from its own text
        assert isinstance(b.pages[1].obj.Contents, pikepdf.Array)  # OCRed: a layer added


def test_format_errors_and_choices(srv: ServerProcess, image: bytes, scanned: bytes) -> None:
    resp = _put(srv, image, {"format": "pdf"})
    assert resp.status_code == 400 and "format=pdf needs a PDF" in resp.json()["message"]
    resp = _put(srv, image, {"format": "text", "detect_only": "true"})
    assert resp.status_code == 400 and "detect_only" in resp.json()["message"]
    resp = _put(srv, image, {"format": "docx"})
    assert resp.status_code == 400 and "json, text, hocr, alto, pdf" in resp.json()["message"]
    # the option wins over Accept; a stream of pages stays JSON
    resp = _put(srv, image, {"format": "json"}, accept="text/plain")
    assert resp.json()["result"][0]["text"] == "ALPHA BRAVO"
    resp = _put(srv, scanned, accept="application/x-ndjson", **PDF)
    assert resp.headers["content-type"] == "application/x-ndjson"
    assert len(resp.text.splitlines()) == 3
