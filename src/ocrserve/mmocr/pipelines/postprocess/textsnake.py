"""MMOCR 0.6.3's ``TextSnakePostprocessor``: TextSnake's five maps -> polygons.

Sigmoid of the text region (TR) and text centre line (TCL) logits; the centre score is
``TCL * TR``, the centre mask ``centre score > min_center_region_confidence`` with holes
filled. Each centre contour of area ``>= min_center_area`` is drawn filled and thinned
(Zhang-Suen, `ocrserve.mmocr.pipelines.postprocess.thinning`); every skeleton pixel walks along the
normal of the predicted text direction, both ways, in steps of ``0.03 * radius``, until the
next step would leave the region, and moves to the middle of the two ends (`centralize`).
There sits a disk of the predicted radius times ``radius_shrink_ratio`` scored by the centre
score; disks are merged highest score first (`merge_disks`), those of radius > 1 drawn, and the
first outer contour of the drawing is the polygon, scored by the mean TR probability under it.

Where MMOCR 0.6.3 would never finish (a step of zero length, radius 0, keeps a point inside
forever), that point stays where it is; where it would crash (an empty skeleton, non-finite
maps), the region is skipped or the point not moved.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ocrserve.errors import ConfigError
from ocrserve.mmocr.pipelines.postprocess import POSTPROCESSORS
from ocrserve.mmocr.pipelines.postprocess.activations import sigmoid
from ocrserve.mmocr.pipelines.postprocess.centre_line import Region, centralize
from ocrserve.mmocr.pipelines.postprocess.fce import fill_hole
from ocrserve.mmocr.pipelines.postprocess.introsort import legacy_argsort
from ocrserve.mmocr.pipelines.postprocess.thinning import skeletonize

__all__ = ["TextSnakePostprocessor", "merge_disks"]


def _ties_matter(disks: np.ndarray) -> bool:
    """Whether two different disks share a score (then the sort's tie order counts)."""
    scores = disks[:, 3]
    if np.unique(scores).size == len(scores) and not np.isnan(scores).any():
        return False
    return np.unique(disks, axis=0).shape[0] != np.unique(scores).size


#: Candidate pairs `merge_disks` looks at up front; beyond, it takes MMOCR's rounds.
_PAIR_BUDGET = 2**22


def _nearby_pairs(xy: np.ndarray, reach: float) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Every ordered pair ``(i, j)``, ``i != j``, at most ``reach`` apart along each axis (and
    some farther): points in the same or adjacent cells of a grid of that size. None if there
    are more than `_PAIR_BUDGET`."""
    cells = np.floor(xy / max(reach, 1.0)).astype(np.int64)
    cells -= cells.min(axis=0) - 1
    span = int(cells[:, 1].max()) + 2
    key = cells[:, 0] * span + cells[:, 1]
    by_key = np.argsort(key, kind="stable")
    sorted_key = key[by_key]
    n, total, pairs = len(xy), 0, []
    for offset in (-span - 1, -span, -span + 1, -1, 0, 1, span - 1, span, span + 1):
        lo = np.searchsorted(sorted_key, key + offset, "left")
        counts = np.searchsorted(sorted_key, key + offset, "right") - lo
        total += int(counts.sum())
        if total > _PAIR_BUDGET:
            return None
        i = np.repeat(np.arange(n), counts)
        first = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        j = by_key[first + np.arange(len(i))]
        pairs.append((i[i != j], j[i != j]))
    return pairs


def _links(disks: np.ndarray, disk_overlap_thr: float) -> tuple[np.ndarray, ...] | None:
    """Every pair ``(i, j)`` that leaves MMOCR's order together: ``close`` when
    ``|xy_i - xy_j| <= (r_i + r_j) * thr`` (merged), else NaN on either side (MMOCR drops ``j``
    without merging it). Distances and thresholds are MMOCR's float64 expressions, which are
    symmetric in ``i`` and ``j``; only pairs within the largest threshold can be linked.
    None when there are too many pairs to list (or non-finite disks)."""
    xy, radius = disks[:, 0:2], disks[:, 2]
    if not np.isfinite(disks[:, 0:3]).all():
        return None
    reach = max(float(2 * radius.max() * disk_overlap_thr), 0.0) * (1 + 1e-6) + 1e-6
    pairs = _nearby_pairs(xy, reach)
    if pairs is None:
        return None
    rows, cols, close = [], [], []
    for i, j in pairs:
        dx, dy = xy[i, 0] - xy[j, 0], xy[i, 1] - xy[j, 1]
        dist = np.sqrt(dx * dx + dy * dy)
        thr = (radius[i] + radius[j]) * disk_overlap_thr
        linked = ~(dist > thr)
        rows.append(i[linked])
        cols.append(j[linked])
        close.append(dist[linked] <= thr[linked])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(close)


def _merge_by_rounds(disks: np.ndarray, order: np.ndarray, thr: float) -> np.ndarray:
    """MMOCR's way: the first remaining disk against all the remaining ones, per round."""
    merged = []
    while order.size > 0:
        i, rest = order[0], order[1:]
        dist = np.linalg.norm(disks[i, 0:2] - disks[rest, 0:2], axis=1)
        limit = (disks[i, 2] + disks[rest, 2]) * thr
        close = rest[dist <= limit]
        merged.append(np.mean(disks[np.hstack([i, close])], axis=0) if close.size else disks[i])
        order = rest[dist > limit]
    return np.vstack(merged)


def merge_disks(disks: np.ndarray, disk_overlap_thr: float) -> np.ndarray:
    """MMOCR's ``merge_disks``: ``x, y, radius, score`` rows, highest score first, each
    averaged with the remaining disks closer than ``(r_i + r_j) * disk_overlap_thr``.

    MMOCR measures the first remaining disk against all the others, round after round (O(n)
    numpy calls of O(n) each); here the linked pairs are listed once (`_links`) and the rounds
    only look up their partners, which gives the same rows. (When most disks are close to most
    others, MMOCR's rounds are the quicker way: taken when the pairs are too many to list.) The
    order is numpy 1.23's (`legacy_argsort`) when different disks tie on score.
    """
    n = len(disks)
    if n == 0:
        return disks.reshape(0, 4)
    ascending = legacy_argsort(disks[:, 3]) if _ties_matter(disks) else np.argsort(disks[:, 3])
    order = ascending[::-1]
    links = _links(disks, disk_overlap_thr)
    if links is None:
        return _merge_by_rounds(disks, order, disk_overlap_thr)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    rows, cols, close = links
    by_row_then_rank = np.lexsort((rank[cols], rows))
    rows, cols, close = rows[by_row_then_rank], cols[by_row_then_rank], close[by_row_then_rank]
    bounds = np.searchsorted(rows, np.arange(n + 1))
    gone = np.zeros(n, dtype=bool)
    merged: list[np.ndarray] = []
    for i in order:
        if gone[i]:
            continue
        gone[i] = True
        lo, hi = bounds[i], bounds[i + 1]
        partners, partner_close = cols[lo:hi], close[lo:hi]
        left = ~gone[partners]
        partners, partner_close = partners[left], partner_close[left]
        gone[partners] = True
        merging = partners[partner_close]
        if merging.size > 0:
            merged.append(np.mean(disks[np.hstack([i, merging])], axis=0))
        else:
            merged.append(disks[i])
    return np.vstack(merged)


@POSTPROCESSORS.register("TextSnakePostprocessor")
class TextSnakePostprocessor:
    """Decode TextSnake's ``5 x H x W`` head output (TR, TCL logits, sin, cos, radius)."""

    def __init__(
        self,
        text_repr_type: str = "poly",
        min_text_region_confidence: float = 0.6,
        min_center_region_confidence: float = 0.2,
        min_center_area: int = 30,
        disk_overlap_thr: float = 0.03,
        radius_shrink_ratio: float = 1.03,
        **kwargs: Any,
    ) -> None:
        if text_repr_type != "poly":
            raise ConfigError(
                f"TextSnakePostprocessor: text_repr_type must be 'poly', got {text_repr_type!r}"
            )
        self.text_repr_type = text_repr_type
        # Unused by MMOCR 0.6.3's decoding too (it computes the mask and never reads it).
        self.min_text_region_confidence = min_text_region_confidence
        self.min_center_region_confidence = min_center_region_confidence
        self.min_center_area = min_center_area
        self.disk_overlap_thr = disk_overlap_thr
        self.radius_shrink_ratio = radius_shrink_ratio

    def __call__(self, preds: np.ndarray) -> list[list[float]]:
        if preds.ndim != 3 or preds.shape[0] < 5:
            raise ValueError(
                f"TextSnakePostprocessor expects a 5 x H x W map, got shape {preds.shape}"
            )
        preds = np.ascontiguousarray(preds, dtype=np.float32)
        probs = sigmoid(preds[:2])
        text_score = probs[0]
        center_score = probs[1] * text_score
        center_mask = fill_hole(center_score > self.min_center_region_confidence)
        # MMOCR asks for RETR_TREE; with the holes filled there are only outer contours, and
        # RETR_EXTERNAL lists the same ones in the same order, several times faster.
        contours, _ = cv2.findContours(
            center_mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        boundaries: list[list[float]] = []
        for contour in contours:
            if cv2.contourArea(contour) < self.min_center_area:
                continue
            boundary = self._instance(contour, preds, text_score, center_score)
            if boundary is not None:
                boundaries.append(boundary)
        return boundaries

    def _instance(
        self,
        contour: np.ndarray,
        preds: np.ndarray,
        text_score: np.ndarray,
        center_score: np.ndarray,
    ) -> list[float] | None:
        # MMOCR draws each region and its disks on whole-image masks; boxes give the same pixels.
        left, top, width, height = cv2.boundingRect(contour)
        region = np.zeros((height, width), dtype=np.uint8)
        cv2.drawContours(region, [contour], -1, (1,), -1, offset=(-left, -top))
        skeleton_yx = np.argwhere(skeletonize(region)) + np.array([top, left])
        if len(skeleton_yx) == 0:
            return None  # MMOCR 0.6.3 raises here (np.vstack of no disks)
        y, x = skeleton_yx[:, 0], skeleton_yx[:, 1]
        sin, cos = preds[2][y, x], preds[3][y, x]
        # MMOCR normalises the whole maps, in float32; the same values at these pixels.
        scale = np.sqrt(1.0 / (sin**2 + cos**2 + np.float32(1e-8)))
        sin, cos = sin * scale, cos * scale
        centers = centralize(skeleton_yx, cos, -sin, preds[4][y, x], Region(region, top, left))
        y, x = centers[:, 0], centers[:, 1]
        radius = (preds[4][y, x] * np.float32(self.radius_shrink_ratio)).reshape(-1, 1)
        score = center_score[y, x].reshape(-1, 1)
        disks = merge_disks(np.hstack([np.fliplr(centers), radius, score]), self.disk_overlap_thr)
        return _polygon(disks[disks[:, 2] > 1], text_score)


def _polygon(disks: np.ndarray, text_score: np.ndarray) -> list[float] | None:
    """The first contour of the drawn disks (int centre and radius), if it has over four
    points and an area, with the mean text score under the drawing."""
    if len(disks) == 0:
        return None
    cx, cy, r = (disks[:, i].astype(np.int64) for i in range(3))  # int() truncation, as MMOCR
    h, w = text_score.shape
    x0, y0 = max(0, int((cx - r).min()) - 1), max(0, int((cy - r).min()) - 1)
    x1, y1 = min(w, int((cx + r).max()) + 2), min(h, int((cy + r).max()) + 2)
    if x0 >= x1 or y0 >= y1:
        return None
    drawn = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    for x, y, radius in zip(cx.tolist(), cy.tolist(), r.tolist()):
        cv2.circle(drawn, (x - x0, y - y0), radius, (1,), -1)
    outlines, _ = cv2.findContours(drawn, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0))
    if not outlines or cv2.contourArea(outlines[0]) <= 0 or outlines[0].size <= 8:
        return None
    under = drawn != 0
    score = float(text_score[y0:y1, x0:x1][under].sum(dtype=np.float64)) / (under.sum() + 1e-8)
    return [*outlines[0].flatten().tolist(), score]
