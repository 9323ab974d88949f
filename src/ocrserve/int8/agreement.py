"""FP32 vs int8 on the calibration images: how far the int8 network's answers move.

Detection: the int8 boxes scored against the FP32 boxes as ground truth (one-to-one greedy
matching by polygon IoU >= 0.5, as ``../shared/tools/evaluate.py`` scores a detector; IoU from
`ocrserve.compare.matching.polygon_iou`), pooled over all pages: H-mean 1.0 when int8 finds the
same lines. Recognition: the share of crops whose int8 text equals the FP32 text exactly. The
disagreement in points is ``100 * (1 - agreement)``; the archiver refuses beyond the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ocrserve.compare.matching import parse_instances, polygon_iou
from ocrserve.predictor import Predictor

__all__ = ["Agreement", "detection_agreement", "hmean_against", "recognition_agreement"]

#: IoU at which an int8 box counts as the FP32 box (evaluate.py's default).
MATCH_IOU = 0.5


@dataclass(frozen=True)
class Agreement:
    """One part's measurement (``metric`` is ``det_hmean`` or ``text_agreement``)."""

    metric: str
    value: float
    #: Pages (detection) or crops (recognition) measured.
    samples: int
    #: Boxes (FP32, int8) or differing crops, to say what moved.
    detail: dict[str, int]

    @property
    def disagreement_points(self) -> float:
        return round(100.0 * (1.0 - self.value), 3)

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": round(self.value, 6),
            "disagreement_points": self.disagreement_points,
            "samples": self.samples,
            **self.detail,
        }


def _polygon(points: Sequence[float]) -> Any:
    from shapely import make_valid
    from shapely.geometry import Polygon

    vertices = list(zip(points[0::2], points[1::2]))
    return make_valid(Polygon(vertices)) if len(vertices) >= 3 else None


def hmean_against(reference: Sequence[Sequence[float]], found: Sequence[Sequence[float]]) -> int:
    """Matches (IoU >= `MATCH_IOU`, one to one, highest IoU first) between two pages' polygons
    given as flat ``[x1, y1, ..., xn, yn]`` lists."""
    ref = [_polygon(p) for p in reference]
    got = [_polygon(p) for p in found]
    candidates = []
    for i, a in enumerate(ref):
        for j, b in enumerate(got):
            iou = polygon_iou(a, b)
            if iou >= MATCH_IOU:
                candidates.append((iou, i, j))
    candidates.sort(reverse=True)
    used_i: set[int] = set()
    used_j: set[int] = set()
    for _, i, j in candidates:
        if i not in used_i and j not in used_j:
            used_i.add(i)
            used_j.add(j)
    return len(used_i)


def detection_agreement(fp32: Predictor, int8: Predictor, pages: Sequence[np.ndarray]) -> Agreement:
    """H-mean of int8 boxes against FP32 boxes, pooled over ``pages``."""
    matched = n_ref = n_got = 0
    for page in pages:
        (a,) = fp32.predict([page])
        (b,) = int8.predict([page])
        ref = [list(i.points) for i in parse_instances("textdet", a)]
        got = [list(i.points) for i in parse_instances("textdet", b)]
        matched += hmean_against(ref, got)
        n_ref, n_got = n_ref + len(ref), n_got + len(got)
    if n_ref == 0 and n_got == 0:
        hmean = 1.0
    else:
        precision = matched / n_got if n_got else 0.0
        recall = matched / n_ref if n_ref else 0.0
        hmean = 2 * precision * recall / (precision + recall) if matched else 0.0
    detail = {"fp32_boxes": n_ref, "int8_boxes": n_got, "matched": matched}
    return Agreement("det_hmean", hmean, len(pages), detail)


def recognition_agreement(
    fp32: Predictor, int8: Predictor, crops: Sequence[np.ndarray], batch: int = 16
) -> Agreement:
    """The share of ``crops`` read the same by both (exact text)."""
    same = 0
    for start in range(0, len(crops), batch):
        chunk = list(crops[start : start + batch])
        a, b = fp32.predict(chunk), int8.predict(chunk)
        same += sum(x.get("text") == y.get("text") for x, y in zip(a, b))
    value = same / len(crops) if crops else 1.0
    return Agreement("text_agreement", value, len(crops), {"differing": len(crops) - same})
