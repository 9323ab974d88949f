"""Reading order of a page's detected lines: columns one after another (an XY-cut on line boxes).

The page is cut into horizontal *bands* where no line crosses (each box's top and bottom are
pulled in by `SHRINK` of its height first, so that boxes grown by the detector's unclip into
the next line do not join every line into one band). Going down the bands, a *section* is the
longest run of bands that all leave one vertical strip free, at least `MIN_GUTTER` line
heights wide: a gutter. The section is split at its gutters; a column of fewer than
`MIN_COLUMN_LINES` lines, or whose lines are short (`MIN_COLUMN_LENGTH`: a table's cells, a
contents list's page numbers), joins its neighbour. When two columns or more remain, each is
read whole, left to right, each ordered the same way in turn; otherwise the section's first
band is read as rows (top to bottom, left to right among lines that share a row) and the next
section starts below it. The thresholds were chosen on the tune half of
``benchmarks/docset.py`` (docs/outputs.md).
A line across the gutter (a title, a caption over both columns) ends a section, so text above
and below it is not mixed. A one-column page comes out top to bottom, as rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "MIN_COLUMN_LENGTH",
    "MIN_COLUMN_LINES",
    "MIN_GUTTER",
    "SHRINK",
    "column_order",
    "row_order",
]

#: Box: left, top, right, bottom.
Box = tuple[float, float, float, float]
Interval = tuple[float, float]

#: A gutter is at least this many (median) line heights wide.
MIN_GUTTER = 1.0
#: Each column of a section holds at least this many lines.
MIN_COLUMN_LINES = 2
#: The lines of a column are at least this many times longer than high, on average weighted by
#: length (about 16 characters: text, not a table's cells).
MIN_COLUMN_LENGTH = 8.0
#: Each box's top and bottom are pulled in by this share of its height for the bands.
SHRINK = 0.2


def _bounds(quad: np.ndarray) -> Box:
    pts = np.asarray(quad, dtype=np.float64).reshape(-1, 2)
    return (
        float(pts[:, 0].min()),
        float(pts[:, 1].min()),
        float(pts[:, 0].max()),
        float(pts[:, 1].max()),
    )


def row_order(boxes: Sequence[Box], idx: Sequence[int]) -> list[int]:
    """``idx`` as rows: by their middles top to bottom, a box that overlaps the row's first
    box by over half the smaller height joining its row; each row left to right."""
    rows: list[list[int]] = []
    for i in sorted(idx, key=lambda i: ((boxes[i][1] + boxes[i][3]) / 2, boxes[i][0])):
        if rows:
            first = boxes[rows[-1][0]]
            top, bottom = boxes[i][1], boxes[i][3]
            overlap = min(bottom, first[3]) - max(top, first[1])
            if overlap > 0.5 * min(bottom - top, first[3] - first[1]):
                rows[-1].append(i)
                continue
        rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda i: boxes[i][0])]


def _bands(boxes: Sequence[Box], idx: Sequence[int]) -> list[list[int]]:
    """``idx`` cut where no (shrunk) box crosses, top to bottom."""
    spans = []
    for i in idx:
        top, bottom = boxes[i][1], boxes[i][3]
        pull = SHRINK * (bottom - top)
        spans.append((top + pull, bottom - pull, i))
    spans.sort()
    bands: list[list[int]] = []
    end = -np.inf
    for top, bottom, i in spans:
        if bands and top < end:
            bands[-1].append(i)
            end = max(end, bottom)
        else:
            bands.append([i])
            end = bottom
    return bands


def _free(boxes: Sequence[Box], idx: Sequence[int], lo: float, hi: float) -> list[Interval]:
    """The parts of ``[lo, hi]`` that no box of ``idx`` covers, left to right."""
    out, x = [], lo
    for left, right in sorted((boxes[i][0], boxes[i][2]) for i in idx):
        if left > x:
            out.append((x, left))
        x = max(x, right)
    if x < hi:
        out.append((x, hi))
    return out


def _intersect(a: Sequence[Interval], b: Sequence[Interval], width: float) -> list[Interval]:
    out = []
    for a0, a1 in a:
        for b0, b1 in b:
            lo, hi = max(a0, b0), min(a1, b1)
            if hi - lo >= width:
                out.append((lo, hi))
    return out


def _length(boxes: Sequence[Box], column: list[int]) -> float:
    """How many times longer than high the column's lines are, each weighted by its length."""
    lengths = np.array(
        [(boxes[i][2] - boxes[i][0]) / (boxes[i][3] - boxes[i][1] or 1) for i in column]
    )
    return float((lengths**2).sum() / max(float(lengths.sum()), 1e-9))


def _columns(boxes: Sequence[Box], idx: list[int], gutters: list[Interval]) -> list[list[int]]:
    """``idx`` split at the gutters, each line by its middle; a column of fewer than
    `MIN_COLUMN_LINES` lines or of lines shorter than `MIN_COLUMN_LENGTH` (a table's cells,
    a list's page numbers) joins the column on its left (the first, the one on its right).
    [] unless two columns or more remain."""
    cuts = sorted((g0 + g1) / 2 for g0, g1 in gutters)
    while cuts:
        columns: list[list[int]] = [[] for _ in range(len(cuts) + 1)]
        for i in idx:
            middle = (boxes[i][0] + boxes[i][2]) / 2
            columns[sum(middle > c for c in cuts)].append(i)
        weak = [
            k
            for k, c in enumerate(columns)
            if len(c) < MIN_COLUMN_LINES or _length(boxes, c) < MIN_COLUMN_LENGTH
        ]
        if not weak:
            return columns
        cuts.pop(max(weak[0] - 1, 0))
    return []


def _order(boxes: Sequence[Box], idx: list[int], height: float, depth: int) -> list[int]:
    bands = _bands(boxes, idx)
    if len(idx) < 2 * MIN_COLUMN_LINES or depth > 8:
        return row_order(boxes, idx)
    lo = min(boxes[i][0] for i in idx)
    hi = max(boxes[i][2] for i in idx)
    width = MIN_GUTTER * height
    out: list[int] = []
    k = 0
    while k < len(bands):
        free = _intersect(_free(boxes, bands[k], lo, hi), [(lo, hi)], width)
        j = k
        while free and j + 1 < len(bands):
            narrower = _intersect(free, _free(boxes, bands[j + 1], lo, hi), width)
            if not narrower:
                break
            free, j = narrower, j + 1
        section = [i for band in bands[k : j + 1] for i in band]
        inner = [g for g in free if lo < g[0] and g[1] < hi]
        columns = _columns(boxes, section, inner) if inner else []
        if columns:
            for column in columns:
                out.extend(_order(boxes, column, height, depth + 1))
            k = j + 1
        else:
            out.extend(row_order(boxes, bands[k]))
            k += 1
    return out


def column_order(quads: Sequence[np.ndarray]) -> list[int]:
    """Indices of the lines (quadrilaterals, or any point lists) in reading order, column by
    column (see the module's note)."""
    if not quads:
        return []
    boxes = [_bounds(q) for q in quads]
    heights = [min(b[2] - b[0], b[3] - b[1]) for b in boxes]
    height = max(1.0, float(np.median(heights)))
    return _order(boxes, list(range(len(boxes))), height, 0)
