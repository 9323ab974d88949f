"""Calibration data: the pages of ``--calibration DIR`` and the network inputs made from them.

The inputs are never rebuilt here: the FP32 predictor runs on the pages (a detector) or on the
line crops a detector cuts from them (a recognizer), and every feed its ONNX Runtime session
receives is recorded (`record_feeds`). So the quantizer calibrates on exactly what the
predictor's own pre-processing hands the network when serving: the same resizing, padding,
normalization and batching.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ocrserve.errors import ArchiveError
from ocrserve.imaging import decode
from ocrserve.predictor import Predictor

__all__ = [
    "IMAGE_SUFFIXES",
    "FeedRecorder",
    "line_crops",
    "network_session_owner",
    "read_pages",
    "record_feeds",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: The decoder's pixel cap for calibration pages (as a server's default ``max_image_pixels``).
MAX_PIXELS = 89_478_485


def read_pages(folder: str | Path, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """The images of ``folder`` (sorted by name, not recursive) as ``(name, BGR array)``."""
    root = Path(folder)
    if not root.is_dir():
        raise ArchiveError(f"--calibration {folder}: not a folder of images")
    paths = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        suffixes = ", ".join(IMAGE_SUFFIXES)
        raise ArchiveError(f"--calibration {folder}: no images in it ({suffixes})")
    pages = []
    for path in paths:
        try:
            pages.append((path.name, decode(path.read_bytes(), MAX_PIXELS)))
        except Exception as exc:  # any decoder error: say which file
            raise ArchiveError(f"--calibration {folder}: cannot read {path.name} ({exc})") from exc
    return pages


class FeedRecorder:
    """Stands in for an ONNX Runtime session: answers as it does and keeps a copy of each feed."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.feeds: list[dict[str, np.ndarray]] = []

    def run(self, output_names: Any, feed: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        self.feeds.append({k: np.array(v, copy=True) for k, v in feed.items()})
        return self.session.run(output_names, feed, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


def network_session_owner(predictor: Predictor) -> Any:
    """The object holding the predictor's network session as ``.session``: a PaddleOCR
    detector or recognizer itself, an MMOCR ONNX predictor's ``network``."""
    for owner in (predictor, getattr(predictor, "network", None)):
        if owner is not None and hasattr(owner, "session"):
            return owner
    raise ArchiveError(
        f"{type(predictor).__name__}: no ONNX Runtime session to quantize (int8 needs an ONNX "
        "network: a PaddleOCR archive or an MMOCR --runtime onnx archive)"
    )


def record_feeds(
    predictor: Predictor, run: Callable[[], Any]
) -> tuple[Any, list[dict[str, np.ndarray]]]:
    """``run()`` with the predictor's session recorded: its result and the feeds it made."""
    owner = network_session_owner(predictor)
    recorder = FeedRecorder(owner.session)
    owner.session = recorder
    try:
        result = run()
    finally:
        owner.session = recorder.session
    return result, recorder.feeds


def line_crops(detector: Predictor, pages: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The crops a composed end-to-end model would hand its recognizer: the detector's lines
    of every page, in reading order, rectified (`ocrserve.compose.end_to_end.lines_and_crops`)."""
    from ocrserve.compose.end_to_end import lines_and_crops

    crops: list[np.ndarray] = []
    for page in pages:
        (answer,) = detector.predict([page])
        for _, _, crop in lines_and_crops(page, answer.get("boundary_result", [])):
            if crop.size and min(crop.shape[:2]) > 1:
                crops.append(crop)
    return crops


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
