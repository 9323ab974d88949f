"""MMOCR 0.6.3's ``centralize`` (TextSnake): move skeleton points to the middle of their region.

Each point walks along the normal of the text direction, both ways, in steps of
``step_ratio * radius``, as long as the next position (truncated to int32) is inside: row in
``[0, h)``, column in ``(0, w)`` -- column 0 stops a walk -- and the region mask set there. The
point then moves to the int32-truncated middle of the two ends. MMOCR moves every point one step
per round until none can move; positions accumulate in float64 (int64 + float32 steps).

The same positions are computed here without taking every step: each point walks on its own,
the first `STEPPED` steps one by one, then in jumps (`_walk_far`) that test only the steps where
a coordinate crosses an integer. A point that a step does not move (radius 0) would keep MMOCR's
loop going forever; it stops where it is, as do walks longer than 2**29 steps (MMOCR: days).
"""

from __future__ import annotations

import numpy as np

__all__ = ["STEP_RATIO", "STEPPED", "Region", "centralize"]

#: ``step = STEP_RATIO * radius * normal`` (MMOCR's default ``step_ratio``).
STEP_RATIO = 0.03
#: Steps taken one by one before a walk goes on in jumps.
STEPPED = 32
#: Integer crossings per coordinate tested in one jump.
_CROSSINGS = 8
_MAX_STEPS = float(2**29)


class Region:
    """A region mask cut to a box at ``(top, left)`` of an image of ``shape``: MMOCR's test."""

    def __init__(self, mask: np.ndarray, top: int = 0, left: int = 0) -> None:
        self.mask = mask
        self.top, self.left = top, left
        # Outside the box the mask is 0; column 0 of the image never counts.
        self.y_range = (top, top + mask.shape[0])
        self.x_range = (max(left, 1), left + mask.shape[1])

    def inside(self, cells: np.ndarray) -> np.ndarray:
        """Whether each int32 ``(y, x)`` is a position a walk may move to."""
        y, x = cells[..., 0], cells[..., 1]
        ok = (y >= self.y_range[0]) & (y < self.y_range[1])
        ok &= (x >= self.x_range[0]) & (x < self.x_range[1])
        at = np.nonzero(ok)
        ok[at] = self.mask[y[at] - self.top, x[at] - self.left] != 0
        return ok


def _walk_far(pos: np.ndarray, step: np.ndarray, region: Region) -> np.ndarray:
    """Where the walks from ``pos`` (``m x 2``) end, jumping over steps that change no cell.

    From ``pos``, ``k`` more steps lead to ``pos + k * step`` exactly as MMOCR's repeated float64
    additions do: a float32 step of at least 2**-17 px and positions within the image need fewer
    than 53 bits (smaller steps agree up to float64 rounding; a coordinate that a step no longer
    changes stays put, as in MMOCR). The cell changes only where a coordinate crosses an integer,
    so each round tests the ``k`` around the next `_CROSSINGS` crossings of each coordinate
    (``floor(k) - 1 .. floor(k) + 2``: the division may round) and the next step; every step up to
    two before the last crossing is then known, and the walk ends before the first step outside.
    """
    out = pos.copy()
    step = np.where(pos + step == pos, 0.0, step)
    live = np.flatnonzero(np.isfinite(step).all(axis=1) & (step != 0).any(axis=1))
    start, step = pos[live], step[live]
    done = np.zeros(len(live))
    offsets = np.arange(-1.0, 3.0)
    ahead = np.arange(_CROSSINGS + 1.0)
    while live.size:
        here = start + done[:, None] * step
        candidates, known = [done[:, None] + 1], np.full(len(live), _MAX_STEPS)
        for axis in (0, 1):
            s = step[:, axis, None]
            first = np.where(s > 0, np.floor(here[:, axis, None]), np.ceil(here[:, axis, None]))
            with np.errstate(divide="ignore", invalid="ignore"):
                k = np.floor((first + np.sign(s) * ahead - start[:, axis, None]) / s)
            k[(s == 0).ravel()] = np.inf
            candidates.append((k[:, :, None] + offsets).reshape(len(live), -1))
            # Crossings past the last one listed change the cell no sooner than this.
            known = np.minimum(known, k[:, -1] - 2)
        limit = np.maximum(done + 1, known)
        ks = np.concatenate(candidates, axis=1)
        ks = np.where((ks > done[:, None]) & (ks <= limit[:, None]), ks, np.inf)
        tested = np.where(np.isfinite(ks), ks, 0.0)
        cells = np.array(start[:, None, :] + tested[:, :, None] * step[:, None, :], dtype=np.int32)
        first_out = np.where(np.isfinite(ks) & ~region.inside(cells), ks, np.inf).min(axis=1)
        ended = np.isfinite(first_out) | (limit >= _MAX_STEPS)
        last = np.where(np.isfinite(first_out), first_out - 1, limit)
        out[live[ended]] = start[ended] + last[ended, None] * step[ended]
        keep = ~ended
        live, start, step, done = live[keep], start[keep], step[keep], limit[keep]
    return out


def _walk(start: np.ndarray, step: np.ndarray, region: Region) -> np.ndarray:
    """The end of each point's walk: `STEPPED` steps one by one, the rest in jumps."""
    pos = start.astype(np.float64)
    step = step.astype(np.float64)
    active = np.arange(len(pos))
    for _ in range(STEPPED):
        if active.size == 0:
            return pos
        moved = pos[active] + step[active]
        keep = region.inside(np.array(moved, dtype=np.int32))
        keep &= (moved != pos[active]).any(axis=1)  # a point that does not move stops
        active = active[keep]
        pos[active] = moved[keep]
    if active.size:
        pos[active] = _walk_far(pos[active], step[active], region)
    return pos


def centralize(
    points_yx: np.ndarray,
    normal_sin: np.ndarray,
    normal_cos: np.ndarray,
    radius: np.ndarray,
    contour_mask: np.ndarray | Region,
    step_ratio: float = STEP_RATIO,
) -> np.ndarray:
    """MMOCR's ``centralize``: the int32 midpoints of each point's walk both ways along
    ``(normal_sin, normal_cos)`` (y, x) in steps of ``step_ratio * radius``, inside the mask.

    ``contour_mask`` is the whole image's region mask, or a `Region` (the mask cut to its box).
    """
    region = contour_mask if isinstance(contour_mask, Region) else Region(contour_mask)
    normal = np.hstack([normal_sin.reshape(-1, 1), normal_cos.reshape(-1, 1)])
    step = step_ratio * radius.reshape(-1, 1) * normal
    top = _walk(points_yx, step, region)
    bottom = _walk(points_yx, -step, region)
    return np.array((top + bottom) * 0.5, dtype=np.int32)
