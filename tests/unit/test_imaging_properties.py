"""Properties of the request decoders, checked by Hypothesis on arbitrary and mutated input.

The contract: for any bytes, `decode` returns an ``H x W x 3`` uint8 array or raises
`InvalidInput` / `PayloadTooLarge`, and `probe`, `maybe_base64` and `decode_base64` return or
raise `InvalidInput` / `PayloadTooLarge`; nothing else ever escapes, since anything else
becomes a 500 in the worker. Valid images of random small sizes and modes decode to their
own shape (turned by their EXIF orientation), lossless ones to their own pixels. A body that
starts with ``%PDF-`` is only recognized by `probe` (format "PDF", no size), and `decode_input`
renders it to pages or raises `InvalidInput` / `PayloadTooLarge`.

Runs are derandomized (the same examples every run, no example database), so CI is stable.
"""

from __future__ import annotations

import base64
import io
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from ocrserve.documents.reader import decode_input
from ocrserve.errors import InvalidInput, PayloadTooLarge
from ocrserve.imaging import ImageInfo, decode, decode_base64, maybe_base64, probe
from ocrserve.settings import InputLimits
from tests.documents import javascript_pdf, many_pages_pdf, pdf_of, text_page

hypothesis = pytest.importorskip("hypothesis", reason="property tests need hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image  # noqa: E402

MAX_PIXELS = 1_000_000
DOCUMENTED = (InvalidInput, PayloadTooLarge)

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def _check_decode(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray | None:
    """Decode under the contract; the array, or None for a documented refusal."""
    try:
        arr = decode(data, max_pixels)
    except DOCUMENTED:
        return None
    assert isinstance(arr, np.ndarray)
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3, arr.shape
    assert arr.shape[0] >= 1 and arr.shape[1] >= 1
    assert arr.shape[0] * arr.shape[1] <= max_pixels
    assert arr.flags["C_CONTIGUOUS"]
    return arr


def _check_probe(data: bytes, max_pixels: int = MAX_PIXELS) -> ImageInfo | None:
    try:
        info = probe(data, max_pixels)
    except DOCUMENTED:
        return None
    if info.format == "PDF":  # measured in the worker
        assert data.startswith(b"%PDF-")
        return info
    assert info.width >= 1 and info.height >= 1
    assert info.width * info.height <= max_pixels
    return info


def _check_pages(data: bytes, limits: InputLimits) -> None:
    """Render under the contract: a list of pages (or one image), or a documented refusal."""
    try:
        out = decode_input(data, limits)
    except DOCUMENTED:
        return
    pages = out if isinstance(out, list) else [out]
    assert 1 <= len(pages) <= limits.max_pages
    for page in pages:
        assert page.dtype == np.uint8 and page.ndim == 3 and page.shape[2] == 3, page.shape
        assert 1 <= page.shape[0] * page.shape[1] <= limits.max_pixels


# -- arbitrary bytes ------------------------------------------------------------------------

#: Magic numbers that steer arbitrary bytes into each format's parser (EPS is left out: its
#: decoder runs Ghostscript, a separate finding in tests/integration/test_security.py).
MAGIC = [
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"\xff\xd8\xff\xe1",
    b"GIF89a",
    b"GIF87a",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"P6\n",
    b"P5\n",
    b"\x00\x00\x01\x00",  # ICO
    b"8BPS",  # PSD
    b"\x0a\x05\x01\x08",  # PCX
]


@PROPERTY
@given(st.binary(max_size=2048))
@example(b"")
@example(b"\x89PNG\r\n\x1a\n")
def test_arbitrary_bytes_decode_or_documented_error(data: bytes) -> None:
    _check_probe(data)
    _check_decode(data)


@PROPERTY
@given(st.sampled_from(MAGIC), st.binary(max_size=1024))
def test_magic_then_arbitrary_bytes_decode_or_documented_error(magic: bytes, rest: bytes) -> None:
    _check_probe(magic + rest)
    _check_decode(magic + rest)


# -- valid images, then mutated -------------------------------------------------------------

#: (format, mode, save options): each a combination a client may send.
COMBINATIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("PNG", "RGB", {}),
    ("PNG", "RGBA", {}),
    ("PNG", "L", {}),
    ("PNG", "LA", {}),
    ("PNG", "P", {}),
    ("PNG", "1", {}),
    ("PNG", "I;16", {}),
    ("JPEG", "RGB", {"quality": 90}),
    ("JPEG", "L", {}),
    ("JPEG", "CMYK", {}),
    ("BMP", "RGB", {}),
    ("BMP", "P", {}),
    ("BMP", "1", {}),
    ("TIFF", "RGB", {}),
    ("TIFF", "RGBA", {}),
    ("TIFF", "CMYK", {}),
    ("TIFF", "I;16", {}),
    ("TIFF", "I", {}),
    ("TIFF", "F", {}),
    ("TIFF", "RGB", {"compression": "tiff_lzw"}),
    ("TIFF", "L", {"compression": "packbits"}),
    ("GIF", "P", {}),
    ("GIF", "L", {}),
    ("WEBP", "RGB", {"lossless": True}),
    ("WEBP", "RGBA", {"lossless": True}),
    ("WEBP", "RGB", {"quality": 50}),
]


def _pixels(seed: int, width: int, height: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _image(rgb: np.ndarray, mode: str) -> Image.Image:
    img = Image.fromarray(rgb, "RGB")
    if mode == "I;16":
        gray = np.asarray(img.convert("L")).astype(np.uint16) * 257
        return Image.fromarray(gray)
    if mode == "RGBA":
        rgba = np.dstack([rgb, rgb[..., 0]])  # an alpha channel that varies
        return Image.fromarray(rgba, "RGBA")
    return img.convert(mode)


sizes = st.integers(min_value=1, max_value=40)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
combinations = st.sampled_from(COMBINATIONS)


@dataclass(frozen=True)
class Encoded:
    data: bytes
    fmt: str
    mode: str
    width: int
    height: int
    rgb: np.ndarray
    lossless_rgb: bool


@st.composite
def encoded(draw: st.DrawFn) -> Encoded:
    fmt, mode, options = draw(combinations)
    width, height = draw(sizes), draw(sizes)
    rgb = _pixels(draw(seeds), width, height)
    data = _encode(_image(rgb, mode), fmt, **options)
    lossless = (
        mode == "RGB"
        and fmt in ("PNG", "BMP", "TIFF", "WEBP")
        and options.get("lossless", fmt != "WEBP")
    )
    return Encoded(data, fmt, mode, width, height, rgb, bool(lossless))


@PROPERTY
@given(encoded())
def test_valid_images_round_trip_shape(img: Encoded) -> None:
    info = probe(img.data, MAX_PIXELS)
    assert (info.width, info.height) == (img.width, img.height)
    arr = _check_decode(img.data)
    assert arr is not None, (img.fmt, img.mode)
    assert arr.shape == (img.height, img.width, 3)
    if img.lossless_rgb:
        assert np.array_equal(arr, img.rgb[:, :, ::-1]), (img.fmt, img.mode)


@PROPERTY
@given(encoded(), st.integers(min_value=1, max_value=10**6))
def test_pixel_cap_holds_for_every_format(img: Encoded, cap: int) -> None:
    if img.width * img.height > cap:
        with pytest.raises(PayloadTooLarge):
            probe(img.data, cap)
        with pytest.raises(PayloadTooLarge):
            decode(img.data, cap)
    else:
        assert decode(img.data, cap).shape == (img.height, img.width, 3)


@PROPERTY
@given(sizes, sizes, seeds)
def test_lossless_rgb_decodes_to_its_pixels_in_bgr(width: int, height: int, seed: int) -> None:
    rgb = _pixels(seed, width, height)
    for fmt, options in (("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True})):
        arr = decode(_encode(Image.fromarray(rgb, "RGB"), fmt, **options), MAX_PIXELS)
        assert np.array_equal(arr, rgb[:, :, ::-1]), fmt


@PROPERTY
@given(sizes, sizes, seeds)
def test_alpha_is_composited_on_white(width: int, height: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    arr = decode(_encode(Image.fromarray(rgba, "RGBA"), "PNG"), MAX_PIXELS)
    alpha = rgba[..., 3:].astype(np.float64) / 255
    expected = rgba[..., :3] * alpha + 255 * (1 - alpha)
    assert np.abs(arr[:, :, ::-1].astype(np.float64) - expected).max() <= 1.0


@PROPERTY
@given(sizes, sizes, seeds)
def test_sixteen_bit_is_scaled_to_eight(width: int, height: int, seed: int) -> None:
    gray = np.random.default_rng(seed).integers(0, 65536, (height, width), dtype=np.uint16)
    arr = decode(_encode(Image.fromarray(gray), "PNG"), MAX_PIXELS)
    expected = np.clip(gray.astype(np.float64) * 255 / 65535 + 0.5, 0, 255).astype(np.uint8)
    for channel in range(3):
        assert np.array_equal(arr[..., channel], expected)


@PROPERTY
@given(sizes, sizes, st.integers(min_value=1, max_value=8))
def test_exif_orientation_turns_the_shape(width: int, height: int, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(Image.new("RGB", (width, height), "gray"), "JPEG", exif=exif)
    turned = orientation in (5, 6, 7, 8)
    assert decode(data, MAX_PIXELS).shape == ((width, height, 3) if turned else (height, width, 3))
    assert decode(data, MAX_PIXELS, exif_orientation=False).shape == (height, width, 3)


@PROPERTY
@given(sizes, sizes, st.integers(min_value=2, max_value=5))
def test_animation_gives_its_first_frame(width: int, height: int, frames: int) -> None:
    shades = [Image.new("L", (width, height), 40 * i).convert("P") for i in range(frames)]
    data = _encode(shades[0], "GIF", save_all=True, append_images=shades[1:])
    arr = decode(data, MAX_PIXELS)
    assert arr.shape == (height, width, 3) and (arr == 0).all()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid image with a few bytes overwritten, bytes inserted, or its tail cut."""
    data = bytearray(draw(encoded()).data)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["overwrite", "insert", "truncate"]))
        at = draw(st.integers(min_value=0, max_value=max(0, len(data) - 1)))
        if kind == "overwrite" and data:
            data[at] = draw(st.integers(min_value=0, max_value=255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[max(1, at) :]
    return bytes(data)


def _tiff_with_float_strip_offsets() -> bytes:
    """A 4 x 4 TIFF whose StripOffsets tag is typed FLOAT (found by this property)."""
    data = bytearray(_encode(Image.new("L", (4, 4), 128), "TIFF"))
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, entry)[0] == 273:
            struct.pack_into("<HI", data, entry + 2, 11, 1)
    return bytes(data)


@settings(PROPERTY, max_examples=600)
@given(mutated())
def test_mutated_images_decode_or_documented_error(data: bytes) -> None:
    _check_probe(data)
    _check_decode(data)


def test_tiff_with_float_strip_offsets_is_invalid_input() -> None:
    data = _tiff_with_float_strip_offsets()
    assert probe(data, MAX_PIXELS).format == "TIFF"  # the header reads fine
    with pytest.raises(InvalidInput):
        decode(data, MAX_PIXELS)


# -- base64 ---------------------------------------------------------------------------------


@PROPERTY
@given(st.binary(max_size=4096))
@example(b"data:image/png;base64,")
@example(b"        ")
@example(b"AAAAAAAA\xff")
def test_maybe_base64_returns_bytes_or_invalid_input(data: bytes) -> None:
    try:
        out = maybe_base64(data)
    except InvalidInput:
        return
    assert isinstance(out, bytes)


@PROPERTY
@given(st.binary(max_size=4096))
def test_decode_base64_returns_bytes_or_invalid_input(data: bytes) -> None:
    try:
        out = decode_base64(data)
    except InvalidInput:
        return
    assert isinstance(out, bytes)


@PROPERTY
@given(st.binary(min_size=6, max_size=4096), st.sampled_from(["std", "urlsafe", "mime", "uri"]))
def test_base64_forms_round_trip(payload: bytes, form: str) -> None:
    if form == "std":
        text = base64.b64encode(payload)
    elif form == "urlsafe":
        text = base64.urlsafe_b64encode(payload).rstrip(b"=")
    elif form == "mime":
        text = base64.encodebytes(payload)  # lines of 76 characters
    else:
        text = b"data:application/octet-stream;base64," + base64.b64encode(payload)
    assert maybe_base64(text) == payload
    assert decode_base64(text) == payload


@PROPERTY
@given(encoded())
def test_maybe_base64_leaves_every_encoded_image_alone(img: Encoded) -> None:
    """No binary image format starts with 8+ characters that are all base64 text."""
    assert maybe_base64(img.data) == img.data


# -- PDF documents --------------------------------------------------------------------------

PDF_LIMITS = InputLimits(max_pixels=MAX_PIXELS, max_pages=5, dpi=72, render_timeout=5.0)


@settings(PROPERTY, max_examples=200)
@given(st.binary(max_size=2048))
def test_pdf_header_then_arbitrary_bytes_render_or_documented_error(rest: bytes) -> None:
    assert _check_probe(b"%PDF-" + rest) is not None
    _check_pages(b"%PDF-" + rest, PDF_LIMITS)


@settings(PROPERTY, max_examples=300)
@given(
    st.sampled_from(
        [
            pdf_of([text_page("AB", (60, 30))], dpi=72),
            javascript_pdf(),
            many_pages_pdf(6),
        ]
    ),  # fmt: skip
    st.data(),
)
def test_mutated_pdfs_render_or_documented_error(original: bytes, data: st.DataObject) -> None:
    doc = bytearray(original)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=0, max_value=len(doc) - 1))
        kind = data.draw(st.sampled_from(["overwrite", "insert", "truncate"]))
        if kind == "overwrite":
            doc[at] = data.draw(st.integers(min_value=0, max_value=255))
        elif kind == "insert":
            doc[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del doc[max(5, at) :]
    _check_pages(bytes(doc), PDF_LIMITS)
