"""``DRRGPostprocessor``: DRRG's linked text components -> boundaries (MMOCR 0.6.3).

MMOCR's ``mmocr/models/textdet/postprocess/{drrg_postprocessor,utils}.py``: edges longer than
50 px (between component centres) score 0; a repeated edge's score is averaged with the one so
far; components linked by scores >= ``link_thr`` form clusters (connected components), lone
components are dropped; each cluster's boxes are walked by the greedy shortest path through
their centres, the top and bottom midpoints make the two sides, and an end box's corners are
added where its outer side midpoint is not inside the polygon. The score is the mean component
score.

MMOCR pops clusters from a set hashed by object id, so its boundary order is not reproducible;
here clusters come in order of their smallest component index.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ocrserve.errors import ConfigError
from ocrserve.mmocr.pipelines.postprocess import POSTPROCESSORS

__all__ = ["DRRGPostprocessor", "comps_to_boundaries", "link_clusters"]

#: Edges between component centres farther apart than this (pixels) never link.
EDGE_LENGTH_THR = 50.0


@POSTPROCESSORS.register("DRRGPostprocessor", ignore=("text_repr_type", "decoding_type"))
class DRRGPostprocessor:
    """Decode ``DRRGHead``'s ``(edges, scores, text_comps)`` (padded: see the head)."""

    def __init__(self, link_thr: float = 0.85, **kwargs: Any) -> None:
        if not isinstance(link_thr, float):
            raise ConfigError(f"DRRGPostprocessor: link_thr must be a float, got {link_thr!r}")
        self.link_thr = link_thr

    def __call__(self, outputs: Any) -> list[list[float]]:
        edges, scores, comps = (np.asarray(o) for o in outputs)
        edges = edges[(edges >= 0).all(axis=1)].astype(np.int64)
        scores = scores[: len(edges)].astype(np.float64)
        comps = comps[~np.isnan(comps).any(axis=1)]
        if len(edges) == 0 or len(comps) == 0:
            return []
        labels = link_clusters(edges, scores, comps, self.link_thr)
        return comps_to_boundaries(comps, labels)


def link_clusters(
    edges: np.ndarray, scores: np.ndarray, comps: np.ndarray, link_thr: float
) -> np.ndarray:
    """A cluster label per component, -1 for components left alone (MMOCR drops those)."""
    edges = np.sort(edges, axis=1)
    centres = comps[:, :8].reshape(-1, 4, 2).mean(axis=1)
    lengths = np.linalg.norm(centres[edges[:, 0]] - centres[edges[:, 1]], axis=1)
    scores = np.where(lengths > EDGE_LENGTH_THR, 0.0, scores)
    merged: dict[tuple[int, int], float] = {}
    for (a, b), score in zip(edges.tolist(), scores.tolist()):
        merged[a, b] = 0.5 * (merged[a, b] + score) if (a, b) in merged else score
    # Union-find over the edges kept; the result is MMOCR's connected components.
    parent = list(range(len(comps)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for (a, b), score in merged.items():
        if score >= link_thr:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    in_graph = np.zeros(len(comps), dtype=bool)
    in_graph[np.unique(edges)] = True
    roots = np.array([root(i) for i in range(len(comps))])
    labels = np.full(len(comps), -1, dtype=np.int64)
    next_label = 0
    for r in sorted(set(roots[in_graph].tolist())):
        members = np.flatnonzero((roots == r) & in_graph)
        if len(members) > 1:
            labels[members] = next_label
            next_label += 1
    return labels


def _shortest_path(points: list[list[int]]) -> list[int]:
    """MMOCR's ``min_connect_path``: grow a path from the first point at whichever end is nearer
    the closest remaining point (ties between equal lengths resolved as its dicts do)."""
    queue = points.copy()
    path: list[list[int]] = []
    ends = [queue[0], queue[0]]
    queue.remove(queue[0])
    while queue:
        to_head: dict[float, list[list[int]]] = {}
        to_tail: dict[float, list[list[int]]] = {}
        for point in queue:
            to_head[_norm2(point, ends[0])] = [point, ends[0]]
            to_tail[_norm2(ends[1], point)] = [ends[1], point]
        head, tail = min(to_head), min(to_tail)
        if head <= tail:
            start, end = to_head[head]
            path.insert(0, [points.index(start), points.index(end)])
            queue.remove(start)
            ends[0] = start
        else:
            start, end = to_tail[tail]
            path.append([points.index(start), points.index(end)])
            queue.remove(end)
            ends[1] = end
    flat = [i for pair in path for i in pair]
    return sorted(set(flat), key=flat.index)


def _norm2(p: list[int], q: list[int]) -> float:
    return float(((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2) ** 0.5)


def _inside(contour: np.ndarray, point: np.ndarray) -> bool:
    x, y = point
    return bool(cv2.pointPolygonTest(contour, (int(x), int(y)), False) > 0.5)


def _fix_corners(
    top: list[list[int]], bot: list[list[int]], first: np.ndarray, last: np.ndarray
) -> tuple[list[list[int]], list[list[int]]]:
    """MMOCR's ``fix_corner``: the end boxes' corners where a side midpoint lies outside."""
    contour = np.array(top + bot[::-1])
    if not _inside(contour, (first[0] + first[3]) / 2):
        top.insert(0, first[0].tolist())
        bot.insert(0, first[3].tolist())
    elif not _inside(contour, (first[1] + first[2]) / 2):
        top.insert(0, first[1].tolist())
        bot.insert(0, first[2].tolist())
    if not _inside(contour, (last[0] + last[3]) / 2):
        top.append(last[0].tolist())
        bot.append(last[3].tolist())
    elif not _inside(contour, (last[1] + last[2]) / 2):
        top.append(last[1].tolist())
        bot.append(last[2].tolist())
    return top, bot


def comps_to_boundaries(comps: np.ndarray, labels: np.ndarray) -> list[list[float]]:
    """MMOCR's ``comps2boundaries`` for each cluster of two or more components."""
    boundaries = []
    for label in range(int(labels.max(initial=-1)) + 1):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            continue
        boxes = comps[members, :8].reshape((-1, 4, 2)).astype(np.int32)
        score = float(np.mean(comps[members, -1]))
        centres = np.mean(boxes, axis=1).astype(np.int32).tolist()
        boxes = boxes[_shortest_path(centres)]
        top = np.mean(boxes[:, 0:2, :], axis=1).astype(np.int32).tolist()
        bot = np.mean(boxes[:, 2:4, :], axis=1).astype(np.int32).tolist()
        top, bot = _fix_corners(top, bot, boxes[0], boxes[-1])
        points = top + bot[::-1]
        boundaries.append([float(c) for p in points for c in p] + [score])
    return boundaries
