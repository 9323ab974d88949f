from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from ocrserve.errors import InvalidInput, PayloadTooLarge
from ocrserve.imaging import decode, lookup_channels, maybe_base64, probe


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
