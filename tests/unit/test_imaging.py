from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from ocrserve.documents.reader import decode_input
from ocrserve.errors import InvalidInput, PayloadTooLarge
from ocrserve.imaging import decode, lookup_channels, maybe_base64, probe
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


def _encode(img: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


RGB = Image.new("RGB", (40, 20), (10, 20, 30))


def test_decode_gives_bgr_uint8() -> None:
    arr = decode(_encode(RGB), 10**6)
    assert arr.shape == (20, 40, 3) and arr.dtype == np.uint8
    assert tuple(arr[0, 0]) == (30, 20, 10)


def test_alpha_composited_on_white() -> None:
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert (decode(_encode(img), 100) == 255).all()


def test_sixteen_bit_scaled() -> None:
    img = Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))
    assert (decode(_encode(img), 100) == 255).all()


@pytest.mark.parametrize("mode", ["L", "P", "1", "LA", "CMYK", "I"])
def test_modes(mode: str) -> None:
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I" else "PNG")
    arr = decode(_encode(RGB.convert(mode), fmt), 10**6)
    assert arr.shape == (20, 40, 3)


def test_exif_orientation_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    data = _encode(RGB, "JPEG", exif=exif.tobytes())
    assert decode(data, 10**6).shape == (40, 20, 3)
    assert decode(data, 10**6, exif_orientation=False).shape == (20, 40, 3)


def test_animated_gif_first_frame() -> None:
    frames = [Image.new("P", (8, 8), i) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    assert decode(buf.getvalue(), 100).shape == (8, 8, 3)


def test_probe_and_pixel_cap() -> None:
    info = probe(_encode(RGB), 800)
    assert (info.width, info.height, info.format) == (40, 20, "PNG")
    with pytest.raises(PayloadTooLarge, match="max_image_pixels"):
        probe(_encode(RGB), 799)
    with pytest.raises(PayloadTooLarge):
        decode(_encode(RGB), 799)


@pytest.mark.parametrize("data", [b"", b"hello", bytes(range(256))])
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        probe(data, 10**6)


def test_not_an_image_names_every_accepted_input_pdf_too() -> None:
    with pytest.raises(InvalidInput) as info:
        probe(b"hello, not an image", 10**6)
    assert info.value.message == (
        "Request body is not a supported image (JPEG, PNG, BMP, TIFF, WebP, GIF) or PDF."
    )


def test_truncated_png_fails_on_decode() -> None:
    data = _encode(Image.effect_noise((64, 64), 50))
    with pytest.raises(InvalidInput, match="Cannot decode"):
        decode(data[: len(data) // 2], 10**6)


def test_base64_forms() -> None:
    raw = _encode(RGB)
    b64 = base64.b64encode(raw)
    assert maybe_base64(raw) == raw
    assert maybe_base64(b64) == raw
    assert maybe_base64(b64[:20] + b"\n" + b64[20:]) == raw
    assert maybe_base64(b"data:image/png;base64," + b64) == raw
    assert maybe_base64(base64.urlsafe_b64encode(raw).rstrip(b"=")) == raw
    with pytest.raises(InvalidInput, match="base64"):
        maybe_base64(b"data:image/png;base64,abc$")


# -- documents: PDF and multi-page TIFF -------------------------------------------------------


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


@pytest.mark.parametrize("shape", [(37, 53, 3), (29, 41), (8, 9, 4)])
@pytest.mark.parametrize("planar", [True, False])
def test_lookup_channels_equals_the_per_pixel_arithmetic(
    shape: tuple[int, ...], planar: bool
) -> None:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    channels = 1 if img.ndim == 2 else shape[2]
    scale = rng.uniform(0.001, 0.02, channels).astype(np.float32)
    shift = rng.uniform(-3, 3, channels).astype(np.float32)
    table = np.arange(256, dtype=np.float32)[:, None] * scale - shift
    expected = img.reshape(*shape[:2], channels).astype(np.float32) * scale - shift
    got = lookup_channels(img, table, planar=planar)
    if planar:
        expected = expected.transpose(2, 0, 1)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    assert np.array_equal(got, expected)


def test_lookup_channels_refuses_what_it_cannot_look_up() -> None:
    table = np.zeros((256, 3), np.float32)
    with pytest.raises(ValueError, match="uint8"):
        lookup_channels(np.zeros((4, 4, 3), np.float32), table, planar=True)
    with pytest.raises(ValueError, match="256 x 1"):
        lookup_channels(np.zeros((4, 4), np.uint8), table, planar=True)
