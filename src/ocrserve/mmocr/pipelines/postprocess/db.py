"""MMOCR 0.x's ``DBPostprocessor``: DBNet's probability map -> text boundaries.

Per contour of ``prob > mask_thr`` (OpenCV ``findContours``, list mode, simple chain): simplify
with ``approxPolyDP`` (epsilon ``epsilon_ratio`` x perimeter), keep it if it has 4+ points and its
mean probability (`box_score_fast`) reaches ``min_text_score``, expand it by
``area * unclip_ratio / perimeter`` with pyclipper (`unclip`), then emit the expanded polygon
(``poly``) or its minimum-area rectangle (``quad``, kept only if both sides exceed
``min_text_width``). Each boundary is ``[x1, y1, ..., xn, yn, score]`` in the coordinates of the
map; `rescale_boundaries` maps them back to the original image (no clipping, as MMOCR).
The whole padded map is processed, so boundaries may lie in the padding, past the image.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import pyclipper
from shapely.geometry import Polygon

from ocrserve.errors import ConfigError
from ocrserve.mmocr.pipelines.postprocess import POSTPROCESSORS

__all__ = [
    "DBPostprocessor",
    "box_score_fast",
    "points2boundary",
    "rescale_boundaries",
    "unclip",
]


def box_score_fast(bitmap: np.ndarray, box: np.ndarray) -> float:
    """Mean of ``bitmap`` inside the polygon ``box`` (integer points), over its clipped bbox."""
    h, w = bitmap.shape[:2]
    lo, hi = box.min(axis=0), box.max(axis=0)
    # Plain-Python clipping: np.clip on scalars costs more than the rest on a noisy map.
    xmin = min(max(math.floor(lo[0]), 0), w - 1)
    xmax = min(max(math.ceil(hi[0]), 0), w - 1)
    ymin = min(max(math.floor(lo[1]), 0), h - 1)
    ymax = min(max(math.ceil(hi[1]), 0), h - 1)
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    shifted = (box - np.array([xmin, ymin], dtype=box.dtype)).reshape(-1, 2).astype(np.int32)
    cv2.fillPoly(mask, [shifted], 1)  # type: ignore[call-overload]
    return float(cv2.mean(bitmap[ymin : ymax + 1, xmin : xmax + 1], mask)[0])


def unclip(box: np.ndarray, unclip_ratio: float = 1.5) -> list[np.ndarray]:
    """Expand a polygon by ``area * unclip_ratio / perimeter`` (round joins); the result paths."""
    poly = Polygon(box)
    distance = poly.area * unclip_ratio / poly.length
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(box.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return [np.asarray(path, dtype=np.int64) for path in offset.Execute(distance)]


def points2boundary(
    points: np.ndarray, text_repr_type: str, text_score: float | None = None, min_width: float = -1
) -> list[float] | None:
    """MMOCR's ``points2boundary``: points -> flat boundary (+ score), or None if too small."""
    boundary: list[Any] = []
    if text_repr_type == "quad":
        rect = cv2.minAreaRect(points.astype(np.int32))
        if min(rect[1]) > min_width:
            boundary = cv2.boxPoints(rect).flatten().tolist()
    elif text_repr_type == "poly":
        height = int(np.max(points[:, 1])) + 10
        width = int(np.max(points[:, 0])) + 10
        mask = np.zeros((height, width), np.uint8)
        mask[points[:, 1], points[:, 0]] = 255
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boundary = list(contours[0].flatten().tolist())
    if text_score is not None:
        boundary = boundary + [text_score]
    if len(boundary) < 8:
        return None
    return boundary


def rescale_boundaries(
    boundaries: list[list[float]], scale_factor: np.ndarray, downsample_ratio: float = 1.0
) -> list[list[float]]:
    """Divide x by ``scale_factor[0]`` and y by ``scale_factor[1]``, as MMOCR's ``resize_boundary``.

    MMOCR multiplies by ``1.0 / downsample_ratio / scale_factor``, a float32 array (the meta's
    ``scale_factor`` is float32), in float64; this does the same so coordinates agree to the bit.
    """
    factor = (1.0 / downsample_ratio / np.asarray(scale_factor, dtype=np.float32)).astype(
        np.float32
    )
    out = []
    for b in boundaries:
        n = len(b) - 1
        coords = np.array(b[:n]) * np.tile(factor[:2], n // 2)
        out.append(coords.tolist() + [b[n]])
    return out


@POSTPROCESSORS.register("DBPostprocessor")
class DBPostprocessor:
    """Decode DBNet's output maps (``3 x H x W``; only the probability map is used)."""

    def __init__(
        self,
        text_repr_type: str = "poly",
        mask_thr: float = 0.3,
        min_text_score: float = 0.3,
        min_text_width: float = 5,
        unclip_ratio: float = 1.5,
        epsilon_ratio: float = 0.01,
        max_candidates: int = 3000,
        **kwargs: Any,
    ) -> None:
        # MMOCR's DBPostprocessor takes and ignores any other keyword argument.
        if text_repr_type not in ("poly", "quad"):
            raise ConfigError(
                f"DBPostprocessor: text_repr_type must be 'poly' or 'quad', got {text_repr_type!r}"
            )
        self.text_repr_type = text_repr_type
        self.mask_thr = mask_thr
        self.min_text_score = min_text_score
        self.min_text_width = min_text_width
        self.unclip_ratio = unclip_ratio
        self.epsilon_ratio = epsilon_ratio
        self.max_candidates = max_candidates

    def __call__(self, preds: np.ndarray) -> list[list[float]]:
        """``preds``: the head output of one image, ``C x H x W`` float32."""
        if preds.ndim != 3:
            raise ValueError(f"DBPostprocessor expects a C x H x W map, got shape {preds.shape}")
        score_map = np.ascontiguousarray(preds[0], dtype=np.float32)
        # MMOCR compares the float32 tensor with the threshold in float32.
        text_mask = (score_map > np.float32(self.mask_thr)).astype(np.uint8)
        contours, _ = cv2.findContours(text_mask * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        boundaries: list[list[float]] = []
        for i, contour in enumerate(contours):
            if i > self.max_candidates:
                break
            epsilon = self.epsilon_ratio * cv2.arcLength(contour, True)
            points = cv2.approxPolyDP(contour, epsilon, True).reshape((-1, 2))
            if points.shape[0] < 4:
                continue
            score = box_score_fast(score_map, points)
            if score < self.min_text_score:
                continue
            boundary = self._boundary(points, score)
            if boundary is not None:
                boundaries.append(boundary)
        return boundaries

    def _boundary(self, points: np.ndarray, score: float) -> list[float] | None:
        paths = unclip(points, unclip_ratio=self.unclip_ratio)
        # MMOCR stacks the paths with np.array: several paths of one length merge into one
        # point list, paths of different lengths (a ragged array) are skipped.
        if not paths or len({len(p) for p in paths}) > 1:
            return None
        poly = np.concatenate(paths).reshape(-1, 2)
        if self.text_repr_type == "quad":
            return points2boundary(poly, "quad", score, self.min_text_width)
        flat: list[Any] = poly.flatten().tolist() + [score]
        return flat if len(flat) >= 8 else None
