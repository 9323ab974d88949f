"""ocrserve.documents.text_layer on hand-written PDFs: the text as drawn, in reading order,
boxes on the rendered ink, agreement with poppler, and the pages whose layer is not usable."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest

from ocrserve.documents import TextLayer, read_text_layer, text_layer
from tests.documents import pdf_of, text_page
from tests.prerequisites import tool_skip_reason
from tests.text_layer_pdfs import (
    IDENTITY_FONT,
    SHUFFLED_LINES,
    Line,
    PdfPage,
    captioned_image_page,
    empty_page,
    letter_page,
    mapped_identity_page,
    mostly_visible_page,
    ocr_layer_page,
    offset_page,
    out_of_order_page,
    pdf,
    rotated_page,
    shuffled_page,
    sideways_page,
    some_unmapped_page,
    two_column_page,
    unmapped_page,
)

DPIS = (150, 200)
#: Pages of visible Helvetica text, checked against the rendered ink and against poppler.
BORN_DIGITAL = {
    "letter": letter_page,
    "two columns": two_column_page,
    "rotate 90": lambda: rotated_page(90),
    "rotate 180": lambda: rotated_page(180),
    "rotate 270": lambda: rotated_page(270),
    "sideways": sideways_page,
    "offset boxes": offset_page,
    "out of order": out_of_order_page,
}
#: Every page whose ink is checked: the above and one of Courier characters drawn one by one.
INKED = {**BORN_DIGITAL, "shuffled": shuffled_page}


def layer_of(data: bytes | PdfPage, dpi: int = 150) -> TextLayer:
    doc = pdfium.PdfDocument(data if isinstance(data, bytes) else pdf([data]))
    try:
        return read_text_layer(doc, 0, dpi / 72)
    finally:
        doc.close()


def texts(layer: TextLayer) -> list[str]:
    return [line["text"] for line in layer.lines]


def drawn(page: PdfPage) -> list[str]:
    return [" ".join(line.text.split()) for line in page.lines]


def box(line: dict[str, object]) -> tuple[float, float, float, float]:
    b = line["box"]
    assert isinstance(b, list)
    assert b == [b[0], b[1], b[2], b[1], b[2], b[5], b[0], b[5]], "axis-aligned, clockwise"
    return b[0], b[1], b[2], b[5]


def test_letter_lines_are_the_drawn_text_top_to_bottom() -> None:
    page = letter_page()
    layer = layer_of(page)
    assert layer.usable, layer.reason
    assert texts(layer) == drawn(page)  # accents and the euro sign through WinAnsiEncoding
    for line in layer.lines:
        assert line["box_score"] == line["text_score"] == 1.0
        assert line["source"] == "text_layer"
        assert all(v == round(v, 1) for v in line["box"])


def test_two_columns_stay_apart_row_by_row() -> None:
    page = two_column_page()
    lines = texts(layer_of(page))
    left, right = drawn(page)[:3], drawn(page)[3:]
    assert lines == [text for row in zip(left, right) for text in row]  # top down, left first
    assert [t for t in lines if t in left] == left
    assert [t for t in lines if t in right] == right


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_rotated_page_reads_upright(rotate: int) -> None:
    page = rotated_page(rotate)
    layer = layer_of(page)
    assert layer.usable, layer.reason
    assert texts(layer) == drawn(page)
    doc = pdfium.PdfDocument(pdf([page]))
    width, height = doc.get_page_size(0)  # as rendered: /Rotate 90 and 270 swap them
    assert (width > height) == (rotate in (90, 270))
    for line in layer.lines:
        x0, y0, x1, y1 = box(line)
        assert x1 - x0 > 3 * (y1 - y0)  # level on the rendered page
        assert 0 <= x0 < x1 <= width * 150 / 72 and 0 <= y0 < y1 <= height * 150 / 72


def test_sideways_text_runs_down_the_page() -> None:
    layer = layer_of(sideways_page())
    assert texts(layer) == ["Sideways text", "next line"]  # the first line is the rightmost
    (ax0, _, _, _), (_, _, bx1, _) = box(layer.lines[0]), box(layer.lines[1])
    assert bx1 < ax0
    for line in layer.lines:
        x0, y0, x1, y1 = box(line)
        assert y1 - y0 > 3 * (x1 - x0)


def test_media_and_crop_box_off_the_origin() -> None:
    layer = layer_of(offset_page())
    assert texts(layer) == drawn(offset_page())[:2]  # not the line outside the CropBox
    # "Offset box text" starts at x = 180, 30 points right of the CropBox's left edge.
    assert box(layer.lines[0])[0] == pytest.approx(30 * 150 / 72, abs=4)


def test_pieces_drawn_out_of_order_make_one_line() -> None:
    assert texts(layer_of(out_of_order_page())) == ["Heading", "Hello world, again"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_characters_drawn_in_random_order_read_in_place(seed: int) -> None:
    layer = layer_of(shuffled_page(seed))
    assert layer.usable, layer.reason
    assert texts(layer) == list(SHUFFLED_LINES)


def test_boxes_are_sub_pixel_and_scale_with_the_page() -> None:
    """At twice the scale, every box is twice as large: PDFium's whole-pixel answers do not
    leak into the boxes (612 x 792 points are whole pixels at both scales)."""
    for make in BORN_DIGITAL.values():
        page = make()
        if page.crop_box:
            continue
        small, large = layer_of(page, 100).lines, layer_of(page, 200).lines
        assert [line["text"] for line in small] == [line["text"] for line in large]
        for a, b in zip(small, large):
            assert np.allclose(np.array(a["box"]) * 2, b["box"], atol=0.2), (a, b)


def test_hyphens_that_end_lines_are_kept_as_drawn() -> None:
    """PDFium gives a line-ending hyphen as U+FFFE (U+0002 from FPDFText_GetUnicode)."""
    page = PdfPage([Line("structures man-", 72, 700), Line("agement, an x-", 72, 686),
                    Line("ray", 72, 672)])  # fmt: skip
    layer = layer_of(page)
    assert layer.usable, layer.reason
    assert texts(layer) == drawn(page)


def test_control_characters_are_left_out() -> None:
    assert texts(layer_of(PdfPage([Line("tab\x07stop\x01s", 72, 700)]))) == ["tabstops"]


def _ink(grey: np.ndarray, region: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = region
    ys, xs = np.nonzero(grey[y0:y1, x0:x1] < 128)
    assert len(xs), f"no ink in {region}"
    return x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1


@pytest.mark.parametrize("dpi", DPIS)
@pytest.mark.parametrize("name", list(INKED))
def test_boxes_hug_the_rendered_ink(name: str, dpi: int) -> None:
    """Each line's box, grown by 4 px, holds ink whose bounding box is the line's box within
    2 px on every side; and no ink on the page lies outside the lines."""
    data = pdf([INKED[name]()])
    layer = layer_of(data, dpi)
    doc = pdfium.PdfDocument(data)
    grey = np.asarray(doc[0].render(scale=dpi / 72).to_pil().convert("L"))
    height, width = grey.shape
    outside = grey < 128
    for line in layer.lines:
        x0, y0, x1, y1 = box(line)
        grown = (max(int(x0) - 4, 0), max(int(y0) - 4, 0), int(x1) + 5, int(y1) + 5)
        ink = _ink(grey, grown)
        assert np.allclose((x0, y0, x1, y1), ink, atol=2), (line["text"], ink)
        outside[max(int(y0) - 2, 0) : int(y1) + 3, max(int(x0) - 2, 0) : int(x1) + 3] = False
        assert x1 <= width and y1 <= height
    assert not outside.any(), f"ink outside every line at {np.argwhere(outside)[:5].tolist()}"


def _pdftotext_lines(path: Path) -> list[list[tuple[str, tuple[float, ...]]]]:
    """poppler's lines per page: their text and box in points (-bbox-layout, CropBox)."""
    exe = shutil.which("pdftotext")
    if exe is None:
        pytest.skip(tool_skip_reason("poppler's pdftotext", "apt-get install -y poppler-utils"))
    xml = subprocess.run(
        [exe, "-bbox-layout", "-cropbox", str(path), "-"], capture_output=True, check=True
    ).stdout.decode()
    number = r'="([-\d.]+)"'
    line_re = re.compile(
        rf"<line xMin{number} yMin{number} xMax{number} yMax{number}>(.*?)</line>", re.S
    )
    pages = []
    for page in xml.split("<page ")[1:]:
        lines = []
        for *coords, body in line_re.findall(page):
            words = re.findall(r"<word [^>]*>([^<]*)</word>", body)
            lines.append((" ".join(words), tuple(float(v) for v in coords)))
        pages.append(lines)
    return pages


def test_positions_agree_with_pdftotext(tmp_path: Path) -> None:
    """Along the text, our ink boxes and poppler's pen-to-advance boxes agree within 2 px plus
    a side bearing (ink starts a little after the pen: under 0.12 em in Helvetica). Across it,
    poppler's boxes run from the font's ascent to its descent, not the ink: Helvetica's ascent
    (0.718 em) is its cap height and its descent (0.207 em) that of p, so a level line with
    capitals or ascenders has poppler's top within 2 px, one with descenders its bottom, and
    every line is inside poppler's box."""
    pages = [make() for make in BORN_DIGITAL.values()]
    path = tmp_path / "pages.pdf"
    path.write_bytes(pdf(pages))
    poppler = _pdftotext_lines(path)
    doc = pdfium.PdfDocument(path.read_bytes())
    scale = 150 / 72
    for index in range(len(pages)):
        theirs = {text: [v * scale for v in coords] for text, coords in poppler[index]}
        ours = read_text_layer(doc, index, scale).lines
        assert sorted(theirs) == sorted(line["text"] for line in ours), index
        for line in ours:
            x0, y0, x1, y1 = box(line)
            px0, py0, px1, py1 = theirs[line["text"]]
            level = x1 - x0 > y1 - y0
            along = ((x0, x1), (px0, px1)) if level else ((y0, y1), (py0, py1))
            across = ((y0, y1), (py0, py1)) if level else ((x0, x1), (px0, px1))
            em = (across[1][1] - across[1][0]) / (0.718 + 0.207)
            (start, end), (pstart, pend) = along
            assert -2 <= start - pstart <= 2 + 0.12 * em, (index, line["text"], along)
            assert -2 <= pend - end <= 2 + 0.12 * em, (index, line["text"], along)
            (low, high), (plow, phigh) = across
            assert plow - 2 <= low < high <= phigh + 2, (index, line["text"], across)
            if level and re.search("[A-Z0-9bdfhkl]", line["text"]):  # as high as the ascent
                assert abs(low - plow) <= 2, (index, line["text"], across)
            if level and re.search("[gjpqy]", line["text"]):  # as low as the descent
                assert abs(high - phigh) <= 2, (index, line["text"], across)


def test_invisible_ocr_layer_is_not_usable() -> None:
    layer = layer_of(ocr_layer_page())
    assert not layer.usable
    assert layer.reason == "100% of the text is invisible (render mode 3): an OCR layer"
    assert texts(layer) == ["HELLO WORLD", "scanned page"]  # what the layer says, all the same


def test_a_little_invisible_text_is_left_out() -> None:
    layer = layer_of(mostly_visible_page())
    assert layer.usable, layer.reason
    assert texts(layer) == drawn(letter_page())


@pytest.mark.parametrize("font", [IDENTITY_FONT, "F2"])
def test_text_without_unicode_is_not_usable(font: str) -> None:
    layer = layer_of(unmapped_page(font))
    assert not layer.usable
    assert layer.reason == "100% of characters have no Unicode mapping"


def test_embedded_font_with_a_unicode_map_is_read() -> None:
    """A /ToUnicode map, one of whose characters is outside the BMP (read one at a time)."""
    layer = layer_of(mapped_identity_page())
    assert layer.usable, layer.reason
    assert texts(layer) == ["abc \U0001d431yz"]


@pytest.mark.parametrize(("count", "usable"), [(5, True), (15, False)])
def test_unmapped_share_threshold(count: int, usable: bool) -> None:
    layer = layer_of(some_unmapped_page(count))  # 129 mapped characters and ``count`` not
    assert layer.usable is usable, layer.reason
    if not usable:
        assert layer.reason == f"{count / (129 + count):.0%} of characters have no Unicode mapping"


def test_image_only_page_has_no_text_layer() -> None:
    layer = layer_of(pdf_of([text_page("HELLO")]))
    assert layer == TextLayer([], False, "no text layer")


def test_a_page_of_too_many_characters_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_layer, "MAX_CHARS", 100)
    assert layer_of(letter_page()) == TextLayer(
        [], False, "161 characters, too many for a page: not read"
    )


def test_empty_page_has_no_text_layer() -> None:
    assert layer_of(empty_page()) == TextLayer([], False, "no text layer")


@pytest.mark.parametrize("in_form", [False, True])
def test_big_picture_with_a_caption_is_not_usable(in_form: bool) -> None:
    layer = layer_of(captioned_image_page(0.6, in_form))
    assert not layer.usable
    assert layer.reason == "images cover 60% of the page"
    assert texts(layer) == ["Figure 1: sales by month"]


@pytest.mark.parametrize("in_form", [False, True])
def test_small_picture_leaves_the_layer_usable(in_form: bool) -> None:
    layer = layer_of(captioned_image_page(0.1, in_form))
    assert layer.usable, layer.reason
    assert layer.reason.endswith("images cover 10%")


def test_importing_the_package_does_not_import_pdfium() -> None:
    code = "import sys, ocrserve.documents; assert 'pypdfium2' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
