"""The output writers on answers made here: words split from line boxes, blocks, hOCR and ALTO
that parse, the searchable PDF's words where its boxes say (``pdftotext -bbox``, rotated
pages too), the original's streams kept byte for byte, and formats chosen by ``Accept``."""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pikepdf
import pytest

from ocrserve.documents.outputs import (
    check_format,
    format_for_accept,
    pages_of,
    render,
    text_only_pdf,
)
from ocrserve.documents.outputs.glyphless import glyphless_ttf
from ocrserve.documents.outputs.layout import blocks, words
from ocrserve.errors import InvalidInput
from tests.documents import pdf_of, text_page
from tests.prerequisites import tool_skip_reason

DPI = 150
SCALE = DPI / 72


def _line(box: tuple[float, float, float, float], text: str, **extra: Any) -> dict[str, Any]:
    x0, y0, x1, y1 = box
    return {"box": [x0, y0, x1, y0, x1, y1, x0, y1], "box_score": 0.9, "text": text,
            "text_score": 0.8, **extra}  # fmt: skip


def _document(*pages: list[dict[str, Any]], width: int = 640, height: int = 240) -> Any:
    return {"pages": [{"page": n, "width": width, "height": height, "result": lines}
                      for n, lines in enumerate(pages, start=1)]}  # fmt: skip


def test_words_share_the_line_by_their_characters() -> None:
    [page] = pages_of({"result": [_line((0, 10, 110, 30), "ab cdefgh")]}, (200, 50))
    [line] = page.lines
    assert [(w.text, round(w.box[0], 3), round(w.box[2], 3)) for w in words(line)] == [
        ("ab", 0, 24.444), ("cdefgh", 36.667, 110),
    ]  # fmt: skip
    assert all(w.box[1] == 10 and w.box[3] == 30 for w in words(line))


def test_a_tall_line_is_read_from_its_top_down() -> None:
    [page] = pages_of({"result": [_line((10, 0, 30, 100), "ab cd")]})
    a, b = words(page.lines[0])
    assert (a.box[1], b.box[3]) == (0, 100) and a.box[3] == pytest.approx(40)


def test_word_confidence_is_its_characters_mean() -> None:
    raw = _line((0, 0, 50, 10), "ab c", char_scores=[1.0, 0.5, 0.0, 0.2])
    [page] = pages_of({"result": [raw]})
    assert [w.confidence for w in words(page.lines[0])] == [0.75, 0.2]


def test_blocks_split_at_gaps_and_keep_rows() -> None:
    lines = [_line((0, 0, 100, 20), "one"), _line((0, 25, 100, 45), "two"),
             _line((0, 200, 100, 220), "three"), _line((150, 202, 250, 220), "beside")]  # fmt: skip
    [page] = pages_of({"result": lines})
    assert [[line.text for line in b.lines] for b in blocks(page.lines)] == [
        ["one", "two"], ["three", "beside"],
    ]  # fmt: skip


def test_text_has_blank_lines_between_blocks_and_form_feeds_between_pages() -> None:
    answer = _document([_line((0, 0, 100, 20), "one"), _line((0, 100, 100, 120), "two")],
                       [], [_line((0, 0, 100, 20), "three")])  # fmt: skip
    assert render("text", answer, b"").body == b"one\n\ntwo\n\f\n\fthree\n"


def test_hocr_is_xml_with_words_inside_their_lines() -> None:
    answer = _document([_line((36, 87, 416, 142), "ALPHA <&> BRAVO")])
    root = ET.fromstring(render("hocr", answer, b"%PDF-", dpi=DPI).body)
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    [page] = root.findall(".//h:div[@class='ocr_page']", ns)
    assert page.get("title") == "bbox 0 0 640 240; ppageno 0; scan_res 150 150"
    [line] = page.findall(".//h:span[@class='ocr_line']", ns)
    found = line.findall("h:span[@class='ocrx_word']", ns)
    assert " ".join(w.text or "" for w in found) == "ALPHA <&> BRAVO"
    assert all("x_wconf 80" in (w.get("title") or "") for w in found)
    assert re.match(r"bbox 36 87 416 142", line.get("title") or "")


def test_alto_pages_lines_strings_and_spaces() -> None:
    answer = _document([_line((36, 87, 416, 142), 'ALPHA "B"')])
    root = ET.fromstring(render("alto", answer, b"").body)
    ns = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
    assert root.findtext("a:Description/a:MeasurementUnit", namespaces=ns) == "pixel"
    [line] = root.findall(".//a:TextLine", ns)
    kinds = [child.tag.split("}")[1] for child in line]
    assert kinds == ["String", "SP", "String"]
    assert [s.get("CONTENT") for s in line.findall("a:String", ns)] == ["ALPHA", '"B"']


def test_format_for_accept_takes_the_preferred_type() -> None:
    assert format_for_accept("text/plain") == "text"
    assert format_for_accept("application/json, text/plain;q=0.5") is None
    assert format_for_accept("text/plain;q=0.2, application/alto+xml") == "alto"
    assert format_for_accept("*/*") is None and format_for_accept("") is None
    assert format_for_accept("text/vnd.hocr+html") == "hocr"


def test_check_format_refuses_what_cannot_be_written() -> None:
    with pytest.raises(InvalidInput, match="format=pdf needs a PDF"):
        check_format("pdf", "PNG", {})
    with pytest.raises(InvalidInput, match="detect_only"):
        check_format("text", "PDF", {"detect_only": True})
    check_format("pdf", "PDF", {})


def test_glyphless_font_checksums() -> None:
    font = glyphless_ttf()
    count = struct.unpack(">H", font[4:6])[0]
    padded = font + b"\0" * (-len(font) % 4)
    total = sum(struct.unpack(f">{len(padded) // 4}I", padded)) & 0xFFFFFFFF
    assert count == 9 and total == 0xB1B0AFBA


needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None,
    reason=tool_skip_reason("poppler's pdftotext", "apt-get install -y poppler-utils"),
)


def _bbox_words(pdf: bytes, tmp: Path) -> list[tuple[str, list[float]]]:
    path = tmp / "out.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-bbox", str(path), "-"], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    found = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">'
                       r"([^<]*)</word>", out)  # fmt: skip
    return [(w[4], [float(v) * SCALE for v in w[:4]]) for w in found]


@needs_poppler
@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_pdf_words_sit_on_their_boxes(tmp_path: Path, rotate: int) -> None:
    source = pdf_of([text_page("")])
    with pikepdf.open(io.BytesIO(source)) as pdf:
        pdf.pages[0].obj.Rotate = rotate
        buf = io.BytesIO()
        pdf.save(buf)
        source = buf.getvalue()
    width, height = (240, 640) if rotate % 180 else (640, 240)
    box = (20.0, 30.0, 200.0, 60.0)
    answer = _document([_line(box, "ALPHA BRAVO")], width=width, height=height)
    found = _bbox_words(render("pdf", answer, source, dpi=DPI).body, tmp_path)
    assert [w for w, _ in found] == ["ALPHA", "BRAVO"]
    (_, first), (_, second) = found
    assert first[:2] == pytest.approx([20, 30], abs=0.5)
    assert second[2:] == pytest.approx([200, 60], abs=0.5)


@needs_poppler
def test_pdf_keeps_every_stream_and_skips_text_layer_pages(tmp_path: Path) -> None:
    source = pdf_of([text_page("A"), text_page("B")])
    answer = _document([_line((36, 87, 100, 142), "A")],
                       [_line((36, 87, 100, 142), "B", source="text_layer")])  # fmt: skip
    out = render("pdf", answer, source, dpi=DPI).body
    with pikepdf.open(io.BytesIO(source)) as a, pikepdf.open(io.BytesIO(out)) as b:
        for pa, pb in zip(a.pages, b.pages):
            for (_, xa), (_, xb) in zip(pa.get_images().items(), pb.get_images().items()):
                assert xa.read_raw_bytes() == xb.read_raw_bytes()
        untouched = b.pages[1].obj.Contents  # the text-layer page: its one stream, as it was
        assert untouched.read_raw_bytes() == a.pages[1].obj.Contents.read_raw_bytes()
    assert [w for w, _ in _bbox_words(out, tmp_path)] == ["A"]


@needs_poppler
def test_text_only_pdf_is_sized_to_the_image(tmp_path: Path) -> None:
    [page] = pages_of({"result": [_line((36, 87, 416, 142), "ALPHA")]}, (640, 240))
    out = text_only_pdf(page, DPI)
    with pikepdf.open(io.BytesIO(out)) as pdf:
        assert [float(v) for v in pdf.pages[0].mediabox] == pytest.approx([0, 0, 307.2, 115.2])
    [(word, box)] = _bbox_words(out, tmp_path)
    assert word == "ALPHA" and box == pytest.approx([36, 87, 416, 142], abs=0.5)
