"""Locality-aware NMS of quadrangles: ``lanms.merge_quadrangle_n9`` (lanms-neo 1.0.2), for DRRG.

EAST's algorithm, as its C++ does it, since DRRG's text components depend on every step:

- coordinates are multiplied by ``precision`` (float64), cast to float32 and truncated to
  integers (Clipper's ``cInt``); scores are float32;
- first pass, in input order: a quadrangle whose IoU with the last kept one exceeds the
  threshold is merged into it, else kept. Merging matches the vertex order as lanms's
  ``normalize_poly`` does (quirk included, see `_match_order`), then takes the score-weighted
  mean of the vertices, kept as int64 sums updated in float32 and truncated, as the C++ does;
  the merged score is the sum of the scores;
- then standard NMS over the kept ones, highest score first, equal scores in the order
  libstdc++'s ``std::sort`` leaves them (`std_sort`);
- IoU = |intersection| / max(|union|, 1), both from Clipper (pyclipper, the same library) in
  even-odd fill, areas summed in float32. Pairs whose bounding boxes do not meet have an
  intersection of 0 without asking Clipper.

Returns float32 ``m x 9`` rows, coordinates divided back by ``precision``.
"""

from __future__ import annotations

import numpy as np
import pyclipper

from ocrserve.mmocr.models.std_sort import std_sort

__all__ = ["merge_quadrangle_n9"]

_F32 = np.float32


def merge_quadrangle_n9(
    polys: np.ndarray, threshold: float = 0.3, precision: float = 10000
) -> np.ndarray:
    """``n x 9`` rows ``(x1, y1, ..., x4, y4, score)`` -> the merged and kept rows (float32)."""
    if len(polys) == 0:
        return np.zeros((0, 9), dtype=np.float32)
    scaled = np.array(polys, dtype=np.float64, copy=True)
    scaled[:, :8] *= precision
    as_f32 = scaled.astype(np.float32)
    coords = np.trunc(as_f32[:, :8]).astype(np.int64).reshape(-1, 4, 2)
    scores = as_f32[:, 8]
    thr = _F32(threshold)

    boxes = np.concatenate([coords.min(axis=1), coords.max(axis=1)], axis=1).tolist()
    kept: list[tuple[np.ndarray, np.float32]] = []
    kept_box: list[int] = []
    for quad, score, box in zip(coords, scores, boxes):
        if kept and _meet(box, kept_box) and _iou(quad, kept[-1][0]) > thr:
            merger = _Merger()
            merger.add(*kept[-1])
            merger.add(quad, score)
            kept[-1] = merger.get()
            kept_box = [*kept[-1][0].min(axis=0).tolist(), *kept[-1][0].max(axis=0).tolist()]
        else:
            kept.append((quad, score))
            kept_box = box
    survivors = _standard_nms(kept, thr)
    out = np.zeros((len(survivors), 9), dtype=np.float32)
    for row, (quad, score) in zip(out, survivors):
        row[:8] = quad.reshape(-1).astype(np.float32)
        row[8] = score
    out[:, :8] /= _F32(precision)
    return out


class _Merger:
    """lanms's ``PolyMerger``: score-weighted vertex sums (int64, updated through float32)."""

    def __init__(self) -> None:
        self.data = np.zeros(8, dtype=np.int64)
        self.score = _F32(0.0)
        self.count = 0

    def add(self, quad: np.ndarray, score: np.float32) -> None:
        if self.count > 0:
            quad = _match_order(self.get()[0], quad)
        weighted = quad.reshape(-1).astype(np.float32) * score
        self.data = np.trunc(self.data.astype(np.float32) + weighted).astype(np.int64)
        self.score = _F32(self.score + score)
        self.count += 1

    def get(self) -> tuple[np.ndarray, np.float32]:
        inverse = _F32(1.0) / max(_F32(1e-8), self.score)
        quad = np.trunc(self.data.astype(np.float32) * inverse).astype(np.int64)
        return quad.reshape(4, 2), self.score


def _match_order(ref: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """lanms's ``normalize_poly``: ``quad`` as is or reversed from a vertex, the first of the
    least total squared distance to ``ref`` winning.

    As in lanms, the as-is candidate compares vertex k with vertex k whatever the start (so only
    start 0 can win it); reversed from vertex j, ``ref[j + i]`` meets ``quad[j + 3 - i]``.
    """
    r = ref.tolist()
    q = quad.tolist()

    def dist(order: list[int], ref_order: list[int]) -> int:
        return sum(
            (r[k][0] - q[i][0]) ** 2 + (r[k][1] - q[i][1]) ** 2 for k, i in zip(ref_order, order)
        )

    best_order, best_d = [0, 1, 2, 3], dist([0, 1, 2, 3], [0, 1, 2, 3])
    for start in range(4):
        order = [(start + 3 - i) % 4 for i in range(4)]
        d = dist(order, [(start + i) % 4 for i in range(4)])
        if d < best_d:
            best_order, best_d = order, d
    return quad[best_order]


def _area(paths: list[list[list[int]]]) -> np.float32:
    total = _F32(0.0)
    for path in paths:
        total = _F32(total + _F32(pyclipper.Area(path)))
    return total


def _iou(a: np.ndarray, b: np.ndarray) -> np.float32:
    """lanms's ``poly_iou`` (callers skip pairs whose bounding boxes do not meet: IoU 0)."""
    clipper = pyclipper.Pyclipper()
    for path, kind in ((a, pyclipper.PT_SUBJECT), (b, pyclipper.PT_CLIP)):
        try:
            clipper.AddPath(path.tolist(), kind, True)
        except pyclipper.ClipperException:  # degenerate: Clipper's AddPath ignores it too
            pass
    try:
        fill = pyclipper.PFT_EVENODD
        inter = clipper.Execute(pyclipper.CT_INTERSECTION, fill, fill)
        union = clipper.Execute(pyclipper.CT_UNION, fill, fill)
    except pyclipper.ClipperException:  # nothing was added
        return _F32(0.0)
    return _F32(abs(_area(inter)) / max(abs(_area(union)), _F32(1.0)))


def _meet(a: list[int], b: list[int]) -> bool:
    """Whether bounding boxes ``(x0, y0, x1, y1)`` meet (if not, the IoU is 0)."""
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def _standard_nms(
    polys: list[tuple[np.ndarray, np.float32]], thr: np.float32
) -> list[tuple[np.ndarray, np.float32]]:
    if not polys:
        return []
    quads = np.stack([q for q, _ in polys])
    low, high = quads.min(axis=1), quads.max(axis=1)
    scores = [float(score) for _, score in polys]
    ranked = std_sort(list(range(len(polys))), lambda i, j: scores[i] > scores[j])
    order = np.array(ranked, dtype=np.int64)
    keep = []
    while len(order):
        current, rest = int(order[0]), order[1:]
        keep.append(current)
        meets = ~(
            (high[rest, 0] < low[current, 0])
            | (high[current, 0] < low[rest, 0])
            | (high[rest, 1] < low[current, 1])
            | (high[current, 1] < low[rest, 1])
        )
        suppressed = np.zeros(len(rest), dtype=bool)
        for j in np.flatnonzero(meets):
            suppressed[j] = _iou(quads[current], quads[rest[j]]) > thr
        order = rest[~suppressed]
    return [polys[i] for i in keep]
