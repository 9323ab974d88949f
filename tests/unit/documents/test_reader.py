"""The document reader (`ocrserve.documents.reader`): PDF pages and multi-page TIFFs decoded
within their limits, refused before rendering when over them, and PDFs with scripts refused."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from ocrserve.documents.reader import decode_input
from ocrserve.errors import InvalidInput, PayloadTooLarge
from ocrserve.imaging import probe
from ocrserve.settings import InputLimits
from tests.documents import (
    encrypted_pdf,
    heavy_page_pdf,
    huge_page_pdf,
    javascript_pdf,
    link_script_pdf,
    many_pages_pdf,
    object_stream_script_pdf,
    pdf_of,
    script_bytes_in_a_stream_pdf,
    text_page,
    tiff_of,
)

RGB = Image.new("RGB", (40, 20), (10, 20, 30))


def test_pdf_pages_rendered_at_the_dpi_in_bgr() -> None:
    pages = decode_input(pdf_of([text_page("A"), text_page("B")], dpi=72), InputLimits(dpi=144))
    assert isinstance(pages, list) and len(pages) == 2
    for page in pages:  # 640 x 240 points at 144 dpi
        assert page.shape == (480, 1280, 3) and page.dtype == np.uint8
        assert tuple(page[0, 0]) == (255, 255, 255)


def test_probe_recognizes_a_pdf_without_reading_it() -> None:
    assert probe(encrypted_pdf(), 1).format == "PDF"  # pages are counted in the worker


def test_multi_page_tiff_gives_pages_and_a_single_page_one_an_image() -> None:
    pages = decode_input(tiff_of([RGB, RGB.convert("L"), RGB]), InputLimits())
    assert isinstance(pages, list) and [p.shape for p in pages] == [(20, 40, 3)] * 3
    single = decode_input(tiff_of([RGB]), InputLimits())
    assert isinstance(single, np.ndarray) and single.shape == (20, 40, 3)


@pytest.mark.parametrize(
    "make,limits,error,needle",
    [
        (encrypted_pdf, InputLimits(), InvalidInput, "encrypted with a password"),
        (lambda: pdf_of([RGB])[:300], InputLimits(), InvalidInput, "Cannot read the PDF"),
        (many_pages_pdf, InputLimits(), PayloadTooLarge, "10000 pages, over max_pdf_pages (50)"),
        (lambda: pdf_of([RGB] * 3), InputLimits(max_pages=2), PayloadTooLarge, "3 pages"),
        (huge_page_pdf, InputLimits(), PayloadTooLarge, "Page 1 of the PDF (100000 x 100000"),
        (lambda: pdf_of([RGB], dpi=72), InputLimits(max_pixels=40 * 20 * 4 - 1, dpi=144),
         PayloadTooLarge, "80 x 40 pixels"),
        (lambda: tiff_of([RGB] * 3), InputLimits(max_pages=2), PayloadTooLarge, "TIFF has 3"),
        (lambda: pdf_of([RGB] * 3, dpi=72), InputLimits(max_total_pixels=3 * 800 - 1, dpi=72),
         PayloadTooLarge, "3 pages have 2400 pixels in all, over max_pdf_pixels (2399)"),
        (lambda: tiff_of([RGB] * 3), InputLimits(max_total_pixels=3 * 800 - 1),
         PayloadTooLarge, "TIFF's 3 pages have 2400 pixels in all"),
        (lambda: tiff_of([RGB, Image.new("RGB", (400, 400))]), InputLimits(max_pixels=1000),
         PayloadTooLarge, "Page 2: Image of 400 x 400"),
    ],
)  # fmt: skip
def test_documents_over_a_limit_are_refused_before_rendering(
    make: Callable[[], bytes], limits: InputLimits, error: type[Exception], needle: str
) -> None:
    started = time.monotonic()
    with pytest.raises(error) as info:
        decode_input(make(), limits)
    assert needle in info.value.args[0] or needle in getattr(info.value, "message", "")
    assert time.monotonic() - started < 2.0


def test_render_time_is_capped_inside_a_page() -> None:
    """A page that takes seconds to draw is stopped at the deadline, not after it is drawn."""
    data = heavy_page_pdf(50_000)
    started = time.monotonic()
    with pytest.raises(PayloadTooLarge, match="pdf_render_timeout .0.2 s.; stopped in page 1"):
        decode_input(data, InputLimits(render_timeout=0.2))
    assert time.monotonic() - started < 1.0


def test_pdfium_runs_no_javascript() -> None:
    """PDFium's build has no JavaScript engine or XFA, and a document gets no form environment
    (scripts run only there): a PDF's /OpenAction script is inert and its page renders."""
    import pypdfium2 as pdfium
    from pypdfium2.version import PDFIUM_INFO

    assert not {"V8", "XFA"} & set(PDFIUM_INFO.flags), PDFIUM_INFO.flags
    assert pdfium.PdfDocument(javascript_pdf()).formenv is None
    (page,) = decode_input(javascript_pdf(), InputLimits(allow_javascript=True))
    assert (page < 128).any()  # "HELLO" is drawn


@pytest.mark.parametrize(
    "make,where",
    [
        (javascript_pdf, "1 document-level script(s)"),
        (link_script_pdf, "/JS, /JavaScript in the file"),
        (object_stream_script_pdf, "/JS, /JavaScript in an object stream"),
    ],
)
def test_pdfs_with_javascript_are_refused_unless_allowed(
    make: Callable[[], bytes], where: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        decode_input(make(), InputLimits())
    assert f"The PDF carries JavaScript ({where})" in info.value.message
    assert "pdf_allow_javascript is off" in info.value.message
    (page,) = decode_input(make(), InputLimits(allow_javascript=True))
    assert (page < 128).any()


def test_script_names_inside_a_stream_are_data() -> None:
    (page,) = decode_input(script_bytes_in_a_stream_pdf(), InputLimits())
    assert (page < 128).any()
