"""The rule Mask R-CNN's boundaries are held to against MMOCR 0.6.3's (tests/parity/
test_mmocr_parity_mask_rcnn.py explains it and the measurements): equal above the highest score
tie, mostly equal below it. Kept apart from tests/parity so that importing it sets no kernel caps.
"""

from __future__ import annotations

__all__ = ["boundary_mismatch"]

#: How far a vertex (px) and a score may be from MMOCR's (the other detectors' tolerances).
VERTEX_TOLERANCE = 0.5
SCORE_TOLERANCE = 1e-4
#: Scores this close on one side count as a tie (float noise: ~5e-7 between ours and MMOCR's).
TIE = 2e-6
#: Below the highest tie, this share of each side's boundaries must still match (69 % measured).
MIN_MATCHED_BELOW_TIE = 0.6


def _matches(a: list[float], b: list[float]) -> bool:
    return (
        len(a) == len(b)
        and abs(a[-1] - b[-1]) <= SCORE_TOLERANCE
        and max(abs(u - v) for u, v in zip(a[:-1], b[:-1])) <= VERTEX_TOLERANCE
    )


def _highest_tie(*sides: list[list[float]]) -> float:
    """The highest score that another boundary on the same side shares within `TIE`."""
    top = -1.0
    for side in sides:
        scores = sorted(b[-1] for b in side)
        top = max([top] + [s for s, t in zip(scores, scores[1:]) if t - s <= TIE])
    return top


def boundary_mismatch(got: list[list[float]], want: list[list[float]]) -> str | None:
    """Why ``got`` is not MMOCR's ``want`` (module docstring: equal above the highest tie, mostly
    equal below it), or None."""
    used: set[int] = set()
    missing = []
    for j, w in enumerate(want):
        hit = next((i for i, g in enumerate(got) if i not in used and _matches(g, w)), None)
        if hit is None:
            missing.append(j)
        else:
            used.add(hit)
    extra = [i for i in range(len(got)) if i not in used]
    if not missing and not extra:
        return None
    tie = _highest_tie(got, want)
    above = [want[j][-1] for j in missing] + [got[i][-1] for i in extra]
    above = [s for s in above if s > tie + SCORE_TOLERANCE]
    if above:
        return f"boundaries scored {above[:5]} differ from MMOCR's (highest tie {tie:.7f})"
    for name, side, unmatched in (("ours", got, extra), ("MMOCR's", want, missing)):
        below = [b for b in side if b[-1] <= tie + SCORE_TOLERANCE]
        if below and 1 - len(unmatched) / len(below) < MIN_MATCHED_BELOW_TIE:
            return f"{len(unmatched)} of {name} {len(below)} tied-or-lower boundaries differ"
    return None
