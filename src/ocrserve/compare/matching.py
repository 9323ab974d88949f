"""Two answers of one model for one image, compared: instances read from each answer (polygons,
end-to-end lines, the recognised word), matched one to one, and checked within tolerances.

`compare_results` is the whole of it; ``ocrserve compare`` (`ocrserve.compare.runner`) runs it on
a local and a served answer. Matching is greedy, closest pair first: answers of the same model
differ by float noise at most, so the closest pair is the right one and an optimal assignment
(Hungarian) would change nothing but the dependencies. Only the standard library loads at import
time (numpy and shapely when matching polygons).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ocrserve.errors import ResultFormatError

__all__ = [
    "ImageComparison",
    "Instance",
    "Pair",
    "Tolerances",
    "compare_results",
    "match_instances",
    "parse_instances",
    "polygon_iou",
    "vertex_distance",
]

#: The keys that carry a task's instances; other keys of an answer must simply be equal.
_INSTANCE_KEYS = {
    "textdet": ("boundary_result",),
    "e2e": ("result",),
    "textrecog": ("text", "score"),
}


@dataclass(frozen=True)
class Tolerances:
    """How far a served answer may be from the local one and still agree."""

    vertex: float = 0.5  # pixels, per vertex (Euclidean)
    score: float = 1e-4
    match_iou: float = 0.5  # polygons overlapping at least this much are the same instance


@dataclass(frozen=True)
class Instance:
    """One thing a model found: a polygon and its score, and a text for e2e and recognition."""

    points: tuple[float, ...] = ()
    score: float | None = None
    text: str | None = None
    text_score: float | None = None
    #: A recognizer's per-character scores, where it answers a list (MMOCR's NRTR) as score.
    char_scores: tuple[float, ...] | None = None

    @property
    def vertices(self) -> list[tuple[float, float]]:
        return list(zip(self.points[0::2], self.points[1::2]))


@dataclass(frozen=True)
class Pair:
    """A local instance matched with a served one, and what differs beyond the tolerances."""

    local: int
    served: int
    vertex_diff: float | None
    score_diff: float | None
    text_differs: bool
    reasons: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.reasons


@dataclass
class ImageComparison:
    """Both answers for one image and how they compare."""

    image: str
    task: str
    local: list[Instance] = field(default_factory=list)
    served: list[Instance] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    only_local: list[int] = field(default_factory=list)
    only_served: list[int] = field(default_factory=list)
    #: Differences outside the instances: errors, unexpected answers, other keys.
    problems: list[str] = field(default_factory=list)
    local_result: Any = None
    served_result: Any = None
    picture: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.problems or self.only_local or self.only_served) and all(
            p.ok for p in self.pairs
        )

    @property
    def max_vertex_diff(self) -> float | None:
        return max((p.vertex_diff for p in self.pairs if p.vertex_diff is not None), default=None)

    @property
    def max_score_diff(self) -> float | None:
        return max((p.score_diff for p in self.pairs if p.score_diff is not None), default=None)

    @property
    def text_mismatches(self) -> int:
        return sum(p.text_differs for p in self.pairs)

    def differing(self, side: str) -> set[int]:
        """Indexes of ``side`` ("local" or "served") instances to highlight."""
        unmatched = self.only_local if side == "local" else self.only_served
        return set(unmatched) | {getattr(p, side) for p in self.pairs if not p.ok}

    def reasons(self) -> list[str]:
        """Every difference, one line each."""
        lines = list(self.problems)
        if self.only_local:
            lines.append(f"local {_indexes(self.only_local)}: no served counterpart")
        if self.only_served:
            lines.append(f"served {_indexes(self.only_served)}: no local counterpart")
        for p in self.pairs:
            lines += [f"local #{p.local} / served #{p.served}: {r}" for r in p.reasons]
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "ok": self.ok,
            "task": self.task,
            "local_count": len(self.local),
            "served_count": len(self.served),
            "matched": len(self.pairs),
            "max_vertex_diff": self.max_vertex_diff,
            "max_score_diff": self.max_score_diff,
            "text_mismatches": self.text_mismatches,
            "only_local": self.only_local,
            "only_served": self.only_served,
            "problems": self.problems,
            "reasons": self.reasons(),
            "pairs": [
                {
                    "local": p.local,
                    "served": p.served,
                    "vertex_diff": p.vertex_diff,
                    "score_diff": p.score_diff,
                    "text_differs": p.text_differs,
                    "ok": p.ok,
                    "reasons": list(p.reasons),
                }
                for p in self.pairs
            ],
            "picture": self.picture,
            "local_result": self.local_result,
            "served_result": self.served_result,
        }


def _indexes(indexes: Sequence[int], shown: int = 12) -> str:
    text = ", ".join(f"#{i}" for i in indexes[:shown])
    return text + (f", ... ({len(indexes)} in all)" if len(indexes) > shown else "")


# -- reading answers ---------------------------------------------------------------------------


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultFormatError(f"{what} is {value!r}, not a number")
    return float(value)


def parse_instances(task: str, result: Any) -> list[Instance]:
    """The instances of an answer in ``task``'s response form (see `ocrserve.predictor`)."""
    if not isinstance(result, dict):
        raise ResultFormatError(f"not a {task} result: a {type(result).__name__}, not an object")
    missing = [k for k in _INSTANCE_KEYS[task] if k not in result]
    if missing:
        keys = ", ".join(sorted(result)) or "none"
        raise ResultFormatError(f"not a {task} result: no {', '.join(missing)} (keys: {keys})")
    if task == "textrecog":
        if not isinstance(result["text"], str):
            raise ResultFormatError(f"text is {result['text']!r}, not a string")
        score = result["score"]
        if isinstance(score, list):
            chars = tuple(_number(v, "a character score") for v in score)
            return [Instance(text=result["text"], char_scores=chars)]
        return [Instance(score=_number(score, "score"), text=result["text"])]
    items = result[_INSTANCE_KEYS[task][0]]
    if not isinstance(items, list):
        raise ResultFormatError(f"{_INSTANCE_KEYS[task][0]} is not a list")
    out = []
    for n, item in enumerate(items):
        if task == "textdet":
            if not isinstance(item, list) or len(item) < 3 or len(item) % 2 == 0:
                raise ResultFormatError(f"boundary #{n} is not [x1, y1, ..., xn, yn, score]")
            points = tuple(_number(v, f"boundary #{n}") for v in item[:-1])
            out.append(Instance(points, _number(item[-1], f"boundary #{n} score")))
        else:
            if not isinstance(item, dict) or not {"box", "text"} <= item.keys():
                raise ResultFormatError(f"result #{n} is not a {{box, box_score, text, ...}}")
            box = item["box"]
            if not isinstance(box, list) or len(box) % 2:
                raise ResultFormatError(f"result #{n} box is not [x1, y1, ..., xn, yn]")
            out.append(
                Instance(
                    tuple(_number(v, f"result #{n} box") for v in box),
                    _number(item.get("box_score", 0.0), f"result #{n} box_score"),
                    str(item["text"]),
                    _number(item.get("text_score", 0.0), f"result #{n} text_score"),
                )
            )
    return out


# -- matching ----------------------------------------------------------------------------------


def vertex_distance(a: Instance, b: Instance) -> float:
    """The largest distance between corresponding vertices; for polygons with different vertex
    counts, the Hausdorff distance between their vertex sets."""
    va, vb = a.vertices, b.vertices
    if not va or not vb:
        return 0.0 if not va and not vb else math.inf
    if len(va) == len(vb):
        return max(math.dist(p, q) for p, q in zip(va, vb))
    forward = max(min(math.dist(p, q) for q in vb) for p in va)
    return max(forward, max(min(math.dist(p, q) for p in va) for q in vb))


def _bbox(inst: Instance) -> tuple[float, float, float, float]:
    xs, ys = inst.points[0::2], inst.points[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def _polygons(instances: Sequence[Instance]) -> list[Any]:
    from shapely import make_valid
    from shapely.geometry import Polygon

    out = []
    for inst in instances:
        vertices = inst.vertices
        out.append(make_valid(Polygon(vertices)) if len(vertices) >= 3 else None)
    return out


def polygon_iou(a: Any, b: Any) -> float:
    """Intersection over union of two shapely geometries (0 for degenerate ones)."""
    if a is None or b is None:
        return 0.0
    union = a.union(b).area
    return float(a.intersection(b).area / union) if union > 0 else 0.0


def match_instances(
    local: Sequence[Instance], served: Sequence[Instance], tol: Tolerances
) -> tuple[list[tuple[int, int, float]], list[int], list[int]]:
    """Match instances one to one: ``(pairs (i, j, vertex distance), only local, only served)``.

    Candidates are pairs within the vertex tolerance, or overlapping by ``tol.match_iou`` (and
    more than nothing); they are taken greedily, closest first (pairs within tolerance by
    distance, then the others by IoU), each instance at most once. Recognition answers (no
    polygon) pair with each other.
    """
    if not any(i.points for i in (*local, *served)):
        n = min(len(local), len(served))
        pairs = [(k, k, 0.0) for k in range(n)]
        return pairs, list(range(n, len(local))), list(range(n, len(served)))
    import numpy as np

    shapes_a, shapes_b = _polygons(local), _polygons(served)
    # Only pairs whose boxes come within the vertex tolerance can match either way.
    boxes_a, boxes_b = (
        np.array(
            [_bbox(x) if x.points else (np.inf, np.inf, -np.inf, -np.inf) for x in side],
            dtype=np.float64,
        ).reshape(-1, 4)
        for side in (local, served)
    )
    near = (
        (boxes_a[:, None, 0] <= boxes_b[None, :, 2] + tol.vertex)
        & (boxes_b[None, :, 0] <= boxes_a[:, None, 2] + tol.vertex)
        & (boxes_a[:, None, 1] <= boxes_b[None, :, 3] + tol.vertex)
        & (boxes_b[None, :, 1] <= boxes_a[:, None, 3] + tol.vertex)
    )
    candidates: list[tuple[tuple[int, float], int, int, float]] = []
    rows, cols = np.nonzero(near)
    for i, j in zip(rows.tolist(), cols.tolist()):
        d = vertex_distance(local[i], served[j])
        if d <= tol.vertex:
            candidates.append(((0, d), i, j, d))
            continue
        iou = polygon_iou(shapes_a[i], shapes_b[j])
        if iou > 0 and iou >= tol.match_iou:
            candidates.append(((1, -iou), i, j, d))
    candidates.sort(key=lambda c: c[0])
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for _, i, j, d in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j, d))
    pairs.sort()
    only_local = [i for i in range(len(local)) if i not in used_a]
    return pairs, only_local, [j for j in range(len(served)) if j not in used_b]


def _compare_pair(i: int, j: int, a: Instance, b: Instance, d: float, tol: Tolerances) -> Pair:
    reasons = []
    vertex_diff: float | None = None
    if a.points or b.points:
        vertex_diff = d
        if len(a.points) != len(b.points):
            reasons.append(f"{len(a.points) // 2} vertices vs {len(b.points) // 2}")
        elif d > tol.vertex:
            reasons.append(f"vertices differ by {d:.3g} px (tolerance {tol.vertex:g})")
    diffs = []
    for name, x, y in (("score", a.score, b.score), ("text score", a.text_score, b.text_score)):
        if x is None or y is None:
            continue
        diffs.append(abs(x - y))
        if abs(x - y) > tol.score:
            reasons.append(f"{name} {x:.6f} vs {y:.6f} (tolerance {tol.score:g})")
    if a.char_scores is not None or b.char_scores is not None:
        ca, cb = a.char_scores or (), b.char_scores or ()
        if (a.char_scores is None) != (b.char_scores is None) or len(ca) != len(cb):
            reasons.append(f"{len(ca)} character scores vs {len(cb)}")
        elif ca:
            diffs.append(max(abs(x - y) for x, y in zip(ca, cb)))
            if diffs[-1] > tol.score:
                reasons.append(
                    f"character scores differ by up to {diffs[-1]:.3g} (tolerance {tol.score:g})"
                )
    text_differs = a.text != b.text
    if text_differs:
        reasons.append(f"text {a.text!r} vs {b.text!r}")
    score_diff = max(diffs) if diffs else None
    return Pair(i, j, vertex_diff, score_diff, text_differs, tuple(reasons))


def compare_results(
    image: str, task: str, local_result: Any, served_result: Any, tol: Tolerances
) -> ImageComparison:
    """Compare two answers for ``image``; a malformed answer is a problem, not an exception."""
    comp = ImageComparison(image, task, local_result=local_result, served_result=served_result)
    for side, result in (("local", local_result), ("served", served_result)):
        try:
            setattr(comp, side, parse_instances(task, result))
        except ResultFormatError as exc:
            comp.problems.append(f"{side} answer: {exc}")
    if comp.problems:
        return comp
    for key in sorted(set(local_result) | set(served_result)):
        if key in _INSTANCE_KEYS[task]:
            continue
        if key not in local_result or key not in served_result:
            where = "local" if key in local_result else "served"
            comp.problems.append(f"key {key!r} only in the {where} answer")
        elif local_result[key] != served_result[key]:
            comp.problems.append(
                f"{key}: {local_result[key]!r} (local) vs {served_result[key]!r} (served)"
            )
    pairs, comp.only_local, comp.only_served = match_instances(comp.local, comp.served, tol)
    comp.pairs = [_compare_pair(i, j, comp.local[i], comp.served[j], d, tol) for i, j, d in pairs]
    return comp
