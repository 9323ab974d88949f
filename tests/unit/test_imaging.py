from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from ocrserve.errors import InvalidInput, PayloadTooLarge
from ocrserve.imaging import decode, maybe_base64, probe


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
