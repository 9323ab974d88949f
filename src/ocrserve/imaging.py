"""Turning request bytes into images, safely.

`probe` reads only an image's header (cheap, used by the HTTP layer to reject bad input
before it is queued); `decode` does the full decode in a worker. Both enforce the decoded
pixel cap, so a small file that claims 50000 x 50000 pixels never gets decoded. Documents (a
PDF, a multi-page TIFF) are read page by page by `ocrserve.documents`.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ocrserve.errors import InvalidInput, PayloadTooLarge

__all__ = [
    "FORMATS",
    "PDF_MAGIC",
    "ImageInfo",
    "check_pixels",
    "decode",
    "decode_base64",
    "decode_frame",
    "is_pdf",
    "lookup_channels",
    "maybe_base64",
    "open_image",
    "probe",
    "shrink_to",
    "unshrink_boundaries",
]

# We enforce our own cap (max_image_pixels) before decoding; Pillow's own warning/limit
# would otherwise fire first with a less useful message.
Image.MAX_IMAGE_PIXELS = None

#: The formats a request may carry (Pillow plugins); everything else is refused unread.
FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF")
_B64_RE = re.compile(rb"^[A-Za-z0-9+/=_\-\s]+$")
_DATA_URI_RE = re.compile(rb"^data:[\w/+.-]*;base64,")
#: How a PDF starts (the header PDFium and every reader look for).
PDF_MAGIC = b"%PDF-"


@dataclass(frozen=True)
class ImageInfo:
    """What the header of an image says (a PDF: format "PDF", no size: pages are read later)."""

    format: str
    width: int
    height: int
    mode: str


def is_pdf(data: bytes) -> bool:
    """Whether the bytes are a PDF (they start with ``%PDF-``)."""
    return data[: len(PDF_MAGIC)] == PDF_MAGIC


def decode_base64(text: bytes) -> bytes:
    """Decode base64 text (standard or URL-safe alphabet, padding optional, a ``data:`` URI too)."""
    text = text.strip()
    uri = _DATA_URI_RE.match(text[:64])
    if uri:
        text = text[uri.end() :]
    text = b"".join(text.split())
    try:
        if b"-" in text or b"_" in text:
            return base64.b64decode(text + b"=" * (-len(text) % 4), altchars=b"-_", validate=True)
        return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"Request body is not valid base64: {exc}") from exc


def maybe_base64(body: bytes) -> bytes:
    """Return the image bytes of a raw body that may be base64 text (MMOCR's handler took it).

    A body that is an image already is returned unchanged. A ``data:`` URI or a body made only
    of base64 characters is decoded; one that looks like base64 but is not valid raises
    `InvalidInput`.
    """
    head = body[:64].lstrip()
    if _DATA_URI_RE.match(head) or (len(body.strip()) >= 8 and _B64_RE.match(body[:4096])):
        return decode_base64(body)
    return body


def open_image(data: bytes) -> Image.Image:
    if not data:
        raise InvalidInput("Request body is empty: send an image (raw bytes, multipart or base64).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Only raster formats: never hand a client's EPS/PDF to Ghostscript and friends.
            return Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError as exc:
        raise InvalidInput(
            "Request body is not a supported image (JPEG, PNG, BMP, TIFF, WebP, GIF) or PDF."
        ) from exc
    except Exception as exc:  # Pillow raises many kinds on hostile headers
        raise InvalidInput(f"Cannot read the image header: {exc}") from exc


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise InvalidInput(f"Image has no pixels ({width} x {height}).")
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"Image of {width} x {height} pixels exceeds max_image_pixels ({max_pixels})."
        )


def probe(data: bytes, max_pixels: int) -> ImageInfo:
    """Read the header only; raise `InvalidInput` / `PayloadTooLarge` for unusable input.

    A PDF is only recognized here: its pages are counted and measured in the worker.
    """
    if is_pdf(data):
        return ImageInfo("PDF", 0, 0, "")
    img = open_image(data)
    width, height = img.size
    check_pixels(width, height, max_pixels)
    return ImageInfo(str(img.format), width, height, img.mode)


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr8 = np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr8 = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def decode(data: bytes, max_pixels: int, *, exif_orientation: bool = True) -> np.ndarray:
    """Decode to an ``H x W x 3`` uint8 BGR array (OpenCV's order, as OCR models expect).

    Alpha is composited onto white, 16-bit images are scaled to 8 bits, palettes and
    CMYK are converted, and only the first frame of an animation is used. With
    ``exif_orientation`` the EXIF rotation is applied, as ``cv2.imread`` does.
    """
    return decode_frame(open_image(data), max_pixels, exif_orientation, in_place=True)


def decode_frame(
    img: Image.Image, max_pixels: int, exif_orientation: bool, *, in_place: bool
) -> np.ndarray:
    check_pixels(img.width, img.height, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            if exif_orientation and in_place:
                ImageOps.exif_transpose(img, in_place=True)  # no copy when nothing rotates
            elif exif_orientation:  # a page of a TIFF: leave the sequence as it is
                img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
    except Exception as exc:  # Pillow raises many kinds on hostile files (TypeError on TIFF tags)
        raise InvalidInput(f"Cannot decode the image ({img.format}): {exc}") from exc
    arr = np.asarray(rgb, dtype=np.uint8)
    import cv2  # only workers decode; the HTTP process never imports OpenCV

    return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)  # about 2x faster than a reversed copy


def shrink_to(img: np.ndarray, max_side: int | None) -> np.ndarray:
    """``img`` scaled down (area interpolation) so that its longer side is at most ``max_side``
    (the image itself when it already fits or ``max_side`` is None)."""
    h, w = img.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return img
    import cv2

    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def lookup_channels(img: np.ndarray, table: np.ndarray, *, planar: bool) -> np.ndarray:
    """``table[img[y, x, c], c]`` for every pixel and channel of a uint8 image (H x W x C, or
    H x W: one channel), through OpenCV's ``LUT``. Per-channel normalisation of a uint8 image
    is a function of 256 values: ``table`` (256 x C, float32) holds what the per-pixel float
    arithmetic gives for each, so the result is bit-identical to it, 6-8x faster on a
    megapixel page. ``planar``: the result is C x H x W, else H x W x C."""
    import cv2

    planes = img[:, :, None] if img.ndim == 2 else img
    h, w, channels = planes.shape
    if img.dtype != np.uint8 or table.shape != (256, channels):
        raise ValueError(f"lookup_channels: uint8 image and 256 x {channels} table expected")
    out = np.empty((channels, h, w) if planar else (h, w, channels), np.float32)
    for c in range(channels):
        column = np.ascontiguousarray(table[:, c], dtype=np.float32)
        plane = np.ascontiguousarray(planes[:, :, c])
        if planar:
            cv2.LUT(plane, column, dst=out[c])
        else:
            out[:, :, c] = cv2.LUT(plane, column).reshape(h, w)
    return out


def unshrink_boundaries(
    boundaries: list[list[float]], shrunk: np.ndarray, original: np.ndarray
) -> list[list[float]]:
    """``[x1, y1, ..., score]`` boundaries found on ``shrunk`` in ``original``'s pixels."""
    if shrunk is original:
        return boundaries
    fx = original.shape[1] / shrunk.shape[1]
    fy = original.shape[0] / shrunk.shape[0]
    out = []
    for b in boundaries:
        coords = [float(v) * (fx if k % 2 == 0 else fy) for k, v in enumerate(b[:-1])]
        out.append([*coords, b[-1]])
    return out
