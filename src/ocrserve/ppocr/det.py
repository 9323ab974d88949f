"""PP-OCR text detection (PP-OCRv3 to v6): DB (differentiable binarization) pre- and
post-processing.

`DBSettings`' defaults are PaddleOCR 2.7's published inference defaults for PP-OCRv4
(``tools/infer/utility.py`` and ``ppocr/postprocess/db_postprocess.py``): the image is resized so
its longer side is at most ``limit_side_len`` with both sides rounded to multiples of 32,
normalised with ImageNet mean/std on BGR pixels; the probability map is thresholded at 0.3, boxes
scoring below ``box_thresh`` are dropped and the rest expanded by ``unclip_ratio``. The bundled
PP-OCRv6 models raise the shorter side instead (``limit_type="min"``, capped by
``max_side_len``) and unclip less: ``ocrserve.ppocr.DEFAULT_CONFIG``.

One step is ocrserve's own, not PaddleOCR's: before detection the image gets a border in the
colour of its edge (``pad_ratio``, ``pad_max``), so that text touching the image's edge, as in a
tight crop, is found (PP-OCRv6's detector misses it otherwise); boxes are mapped back to the
image and clipped to it. Only small images (crops, strips) get it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyclipper
from shapely.geometry import Polygon

from ocrserve.imaging import lookup_channels, shrink_to
from ocrserve.onnx_session import create_session
from ocrserve.ppocr.weights import weights_path

__all__ = ["DBSettings", "PPOCRDetector", "db_boxes", "order_clockwise", "pad_for_det"]


#: The border's defaults (`DBSettings.pad_ratio`, `pad_max`, `pad_below`): docs/models.md.
PAD_RATIO = 0.25
PAD_MAX = 32
PAD_BELOW = 256


@dataclass(frozen=True)
class DBSettings:
    """Detection resize and DB post-processing settings."""

    limit_side_len: int = 960
    limit_type: str = "max"  # "max": cap the longer side; "min": raise the shorter side
    #: With ``limit_type="min"``: the longer side is never made larger than this (0: no cap).
    max_side_len: int = 0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    thresh: float = 0.3
    box_thresh: float = 0.6
    unclip_ratio: float = 1.5
    max_candidates: int = 1000
    use_dilation: bool = False
    min_size: int = 3
    #: The border added before detection: this fraction of the image's shorter side on each side
    #: (0: none), at most ``pad_max`` pixels (0: no cap), to images whose shorter side is under
    #: ``pad_below`` pixels (0: every image): crops and strips, whose shorter side is about a text
    #: line's height. A border on whole pages changes their detection scale and lost accuracy.
    pad_ratio: float = PAD_RATIO
    pad_max: int = PAD_MAX
    pad_below: int = PAD_BELOW


def resize_for_det(img: np.ndarray, s: DBSettings) -> np.ndarray:
    """Resize so the limited side meets ``limit_side_len``; both sides multiples of 32."""
    h, w = img.shape[:2]
    if s.limit_type == "max":
        ratio = s.limit_side_len / max(h, w) if max(h, w) > s.limit_side_len else 1.0
    else:
        ratio = s.limit_side_len / min(h, w) if min(h, w) < s.limit_side_len else 1.0
        if s.max_side_len and max(h, w) * ratio > s.max_side_len:
            ratio = s.max_side_len / max(h, w)
    new_h = max(int(round(h * ratio / 32) * 32), 32)
    new_w = max(int(round(w * ratio / 32) * 32), 32)
    if (new_h, new_w) == (h, w):
        return img
    return cv2.resize(img, (new_w, new_h))


def pad_for_det(img: np.ndarray, s: DBSettings) -> tuple[np.ndarray, int]:
    """``img`` with the border of `DBSettings.pad_ratio` in the median colour of its outermost
    pixels (the background, even where text touches the edge), and the border's width."""
    h, w = img.shape[:2]
    if s.pad_below and min(h, w) >= s.pad_below:
        return img, 0
    pad = round(min(h, w) * s.pad_ratio)
    if s.pad_max:
        pad = min(pad, s.pad_max)
    if pad <= 0:
        return img, 0
    edge = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    colour = [float(v) for v in np.atleast_1d(np.median(edge, axis=0))]
    return cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=colour), pad


def normalize(img: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(x / 255 - mean) / std`` per channel, HWC uint8 -> 1 x C x H x W float32."""
    scale = np.float32(1.0 / 255.0) / np.asarray(std, np.float32)
    shift = np.asarray(mean, np.float32) / np.asarray(std, np.float32)
    # The same float32 arithmetic, done once per pixel value (a table) instead of per pixel.
    table = np.arange(256, dtype=np.float32)[:, None] * scale - shift
    return lookup_channels(img, table, planar=True)[None]


def _mini_box(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The minimum-area rectangle of ``points``: 4 corners from top-left clockwise, short side."""
    rect = cv2.minAreaRect(points)
    corners = sorted(cv2.boxPoints(rect).tolist(), key=lambda p: p[0])
    left = sorted(corners[:2], key=lambda p: p[1])
    right = sorted(corners[2:], key=lambda p: p[1])
    box = np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)
    return box, float(min(rect[1]))


def _box_score(prob: np.ndarray, box: np.ndarray) -> float:
    """Mean probability inside the box (DB's "fast" score)."""
    h, w = prob.shape
    xmin = int(np.clip(np.floor(box[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(box[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(box[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(box[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    shifted = box - np.array([xmin, ymin], dtype=np.float32)
    cv2.fillPoly(mask, [shifted.astype(np.int32)], 1)  # type: ignore[call-overload]
    return float(cv2.mean(prob[ymin : ymax + 1, xmin : xmax + 1], mask)[0])


def _unclip(box: np.ndarray, ratio: float) -> np.ndarray | None:
    """Expand a polygon by DB's offset ``area * ratio / perimeter``."""
    poly = Polygon(box)
    if poly.length == 0:
        return None
    distance = poly.area * ratio / poly.length
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(
        box.round().astype(np.int64).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON
    )
    expanded = offset.Execute(distance)
    if len(expanded) != 1:
        return None
    return np.asarray(expanded[0], dtype=np.float32)


def order_clockwise(pts: np.ndarray) -> np.ndarray:
    """Order 4 points top-left, top-right, bottom-right, bottom-left."""
    xs = pts[np.argsort(pts[:, 0], kind="stable")]
    left = xs[:2][np.argsort(xs[:2, 1], kind="stable")]
    right = xs[2:][np.argsort(xs[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def db_boxes(
    prob: np.ndarray,
    orig_h: int,
    orig_w: int,
    s: DBSettings,
    border: tuple[float, float] = (0.0, 0.0),
) -> list[tuple[np.ndarray, float]]:
    """Quadrilaterals (in original pixels, clockwise from top-left) and scores from a DB map
    of the image with ``border`` (x, y: original pixels on each side) around it."""
    border_x, border_y = border
    bitmap: np.ndarray = (prob > s.thresh).astype(np.uint8)
    if s.use_dilation:
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
    map_h, map_w = prob.shape
    contours, _ = cv2.findContours(bitmap * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out: list[tuple[np.ndarray, float]] = []
    for contour in contours[: s.max_candidates]:
        box, short = _mini_box(contour)
        if short < s.min_size:
            continue
        score = _box_score(prob, box)
        if score < s.box_thresh:
            continue
        expanded = _unclip(box, s.unclip_ratio)
        if expanded is None:
            continue
        box, short = _mini_box(expanded.reshape(-1, 1, 2))
        if short < s.min_size + 2:
            continue
        box[:, 0] = np.round(box[:, 0] / map_w * (orig_w + 2 * border_x) - border_x)
        box[:, 1] = np.round(box[:, 1] / map_h * (orig_h + 2 * border_y) - border_y)
        box[:, 0] = np.clip(box[:, 0], 0, orig_w)
        box[:, 1] = np.clip(box[:, 1], 0, orig_h)
        box = order_clockwise(box)
        box[:, 0] = np.clip(box[:, 0], 0, orig_w - 1)
        box[:, 1] = np.clip(box[:, 1], 0, orig_h - 1)
        width = int(np.linalg.norm(box[0] - box[1]))
        height = int(np.linalg.norm(box[0] - box[3]))
        if width <= 3 or height <= 3:
            continue
        out.append((box, score))
    return out


class PPOCRDetector:
    """PP-OCR DB text-line detector on ONNX Runtime."""

    task = "textdet"
    exif_orientation = True

    def __init__(
        self, threads: int = 1, settings: DBSettings | None = None, model: Path | None = None
    ) -> None:
        self.settings = settings or DBSettings()
        self.session = create_session(model or weights_path("det"), threads)
        self._input = self.session.get_inputs()[0].name

    def settings_for(self, options: Mapping[str, Any] | None) -> DBSettings:
        """The settings with a request's ``box_score_threshold`` (`ocrserve.options`)."""
        if options and "box_score_threshold" in options:
            return replace(self.settings, box_thresh=float(options["box_score_threshold"]))
        return self.settings

    def detect(
        self, img: np.ndarray, settings: DBSettings | None = None, max_side: int | None = None
    ) -> list[tuple[np.ndarray, float]]:
        """Boxes and scores for one BGR image, in its pixels; ``max_side`` scales it down first."""
        s = settings or self.settings
        h, w = img.shape[:2]
        small = shrink_to(img, max_side)
        padded, pad = pad_for_det(small, s)
        x = normalize(resize_for_det(padded, s), s.mean, s.std)
        prob = self.session.run(None, {self._input: x})[0][0, 0]
        border = (pad * w / small.shape[1], pad * h / small.shape[0])
        return db_boxes(prob, h, w, s, border)

    def predict(
        self, images: Sequence[np.ndarray], options: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        settings, max_side = self.settings_for(options), (options or {}).get("max_side")
        results = []
        for img in images:
            boxes = self.detect(img, settings, max_side)
            results.append(
                {
                    "boundary_result": [
                        [float(v) for v in box.reshape(-1)] + [round(score, 6)]
                        for box, score in boxes
                    ]
                }
            )
        return results
