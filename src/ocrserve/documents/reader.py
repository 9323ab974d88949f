"""Documents read page by page: a PDF or a multi-page TIFF becomes a `PageSource`.

`open_document` checks everything that can be checked before any page is drawn (the page
count, every selected page's size, all pages' pixels together, a PDF's scripts) and returns a
source that renders one page at a time, so that no more than one page's pixels are held and a
page that cannot be read fails alone. Workers only: PDFium is imported here for a PDF.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from ocrserve.documents.pdf import open_pdf
from ocrserve.documents.source import (
    PageSource,
    check_page_count,
    check_total_pixels,
    select_pages,
)
from ocrserve.errors import InvalidInput, OcrServeError
from ocrserve.imaging import check_pixels, decode, decode_frame, is_pdf, open_image
from ocrserve.settings import InputLimits

__all__ = ["PageSource", "TiffPages", "decode_input", "open_document"]


class TiffPages(PageSource):
    """The frames of a multi-page TIFF, each decoded when it is asked for."""

    kind = "TIFF"

    def __init__(
        self, img: Image.Image, selected: list[int], limits: InputLimits, exif_orientation: bool
    ) -> None:
        super().__init__([k + 1 for k in selected])
        self._img, self._limits, self._exif = img, limits, exif_orientation

    def render(self, k: int) -> np.ndarray:
        number = self.numbers[k]
        try:
            self._img.seek(number - 1)
            return decode_frame(self._img, self._limits.max_pixels, self._exif, in_place=False)
        except OcrServeError as exc:
            exc.message = f"Page {number}: {exc.message}"
            raise
        except Exception as exc:  # a broken chain of pages
            raise InvalidInput(f"Cannot read page {number} of the TIFF: {exc}") from exc

    def size(self, k: int) -> tuple[int, int]:
        try:
            self._img.seek(self.numbers[k] - 1)
            return (int(self._img.width), int(self._img.height))
        except Exception:
            return (0, 0)

    def close(self) -> None:
        self._img.close()


def _open_tiff(
    img: Image.Image,
    frames: int,
    limits: InputLimits,
    exif_orientation: bool,
    pages: Sequence[tuple[int, int]] | None,
) -> TiffPages:
    selected = select_pages(frames, pages, "TIFF")
    check_page_count(len(selected), limits, "TIFF")
    sizes = []
    for k in selected:  # every page's size from its header before any is decoded
        try:
            img.seek(k)
        except Exception as exc:
            raise InvalidInput(f"Cannot read page {k + 1} of the TIFF: {exc}") from exc
        try:
            check_pixels(img.width, img.height, limits.max_pixels)
        except OcrServeError as exc:
            exc.message = f"Page {k + 1}: {exc.message}"
            raise
        sizes.append(img.width * img.height)
    check_total_pixels(sizes, limits, "TIFF")
    return TiffPages(img, selected, limits, exif_orientation)


def open_document(
    data: bytes,
    limits: InputLimits,
    *,
    exif_orientation: bool = True,
    pages: Sequence[tuple[int, int]] | None = None,
) -> PageSource | None:
    """The pages of a PDF or a multi-page TIFF (a one-page TIFF too when ``pages`` is given);
    None for anything else (an image: decode it with `ocrserve.imaging.decode`).

    ``pages`` selects pages (ranges from 1, both ends included: the ``pages`` request option);
    `max_pages` and the pixel caps apply to the pages selected.
    """
    if is_pdf(data):
        return open_pdf(data, limits, pages)
    img = open_image(data)
    if img.format != "TIFF":
        return None
    try:
        frames = int(getattr(img, "n_frames", 1))
    except Exception as exc:  # a broken chain of pages
        raise InvalidInput(f"Cannot read the pages of the TIFF: {exc}") from exc
    if frames > 1 or pages:
        return _open_tiff(img, frames, limits, exif_orientation, pages)
    return None


def decode_input(
    data: bytes,
    limits: InputLimits,
    *,
    exif_orientation: bool = True,
    pages: Sequence[tuple[int, int]] | None = None,
) -> np.ndarray | list[np.ndarray]:
    """An image as `ocrserve.imaging.decode` does, or every selected page of a PDF or
    multi-page TIFF read at once (in-process use and tests; workers read page by page)."""
    source = open_document(data, limits, exif_orientation=exif_orientation, pages=pages)
    if source is None:
        return decode(data, limits.max_pixels, exif_orientation=exif_orientation)
    with source:
        return [source.render(k) for k in range(len(source.numbers))]
