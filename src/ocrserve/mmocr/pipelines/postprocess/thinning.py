"""Zhang-Suen thinning as scikit-image's 2D ``skeletonize`` computes it (``method="zhang"``).

TextSnake's postprocessor (MMOCR 0.6.3) thins each centre region with
``skimage.morphology.skeletonize``; this gives the same pixels without scikit-image.

What skimage (0.21 and later; the table has not changed since 2015) does: the image is padded
with one background pixel; each iteration has two sub-passes, and within a sub-pass every
foreground pixel is judged on the image as it was when the sub-pass began (all removals are
applied together at its end). A pixel is judged by the code of its 8 neighbours (bits below)
through a 256-entry table whose value says in which sub-pass it may go: 1 first, 2 second,
3 both, 0 never. Iterations stop when neither sub-pass removed anything.

The table is the paper's rule (T. Y. Zhang and C. Y. Suen, "A fast parallel algorithm for
thinning digital patterns", CACM 27(3), 1984): 2 <= B <= 6 neighbours, exactly one 0 -> 1
transition around the ring N, NE, ..., NW, and N*E*S = E*S*W = 0 (first sub-pass) or
N*E*W = N*S*W = 0 (second) -- except for the 25 neighbourhoods in `_SKIMAGE_DEPARTURES`, where
skimage's hand-written table says otherwise (staircase corners go, some end pixels stay).
"""

from __future__ import annotations

import numpy as np

__all__ = ["skeletonize", "thinning_table"]

#: Neighbour -> (row offset, column offset, bit in the neighbourhood code), skimage's numbering.
_NEIGHBOURS: dict[str, tuple[int, int, int]] = {
    "NW": (-1, -1, 0),
    "N": (-1, 0, 1),
    "NE": (-1, 1, 2),
    "E": (0, 1, 3),
    "SE": (1, 1, 4),
    "S": (1, 0, 5),
    "SW": (1, -1, 6),
    "W": (0, -1, 7),
}
_RING = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")

#: Neighbourhoods (the foreground neighbours) where skimage's table departs from the paper's
#: rule, with skimage's value.
_SKIMAGE_DEPARTURES: dict[frozenset[str], int] = {
    frozenset(names): value
    for names, value in (
        (("NW", "N"), 1),
        (("N", "NE"), 1),
        (("N", "E"), 3),
        (("NW", "N", "E"), 1),
        (("NE", "E"), 1),
        (("N", "NE", "E"), 1),
        (("E", "SE"), 2),
        (("N", "E", "SE"), 2),
        (("E", "S"), 3),
        (("SE", "S"), 0),
        (("E", "SE", "S"), 2),
        (("S", "SW"), 2),
        (("E", "S", "SW"), 2),
        (("NE", "E", "S", "SW"), 2),
        (("NW", "W"), 0),
        (("N", "W"), 3),
        (("NW", "N", "W"), 1),
        (("N", "NE", "W"), 1),
        (("S", "W"), 3),
        (("NW", "S", "W"), 1),
        (("SE", "S", "W"), 2),
        (("SW", "W"), 2),
        (("N", "SW", "W"), 1),
        (("N", "NE", "SW", "W"), 1),
        (("S", "SW", "W"), 2),
    )
}


def _paper_rule(present: dict[str, bool]) -> int:
    ring = [present[name] for name in _RING]
    count = sum(ring)
    transitions = sum(1 for i in range(8) if not ring[i] and ring[(i + 1) % 8])
    if not (2 <= count <= 6 and transitions == 1):
        return 0
    n, e, s, w = present["N"], present["E"], present["S"], present["W"]
    first = not (n and e and s) and not (e and s and w)
    second = not (n and e and w) and not (n and s and w)
    return int(first) + 2 * int(second)


def thinning_table() -> np.ndarray:
    """The 256-entry table (uint8): neighbourhood code -> 0, 1, 2 or 3 (see the module doc)."""
    table = np.zeros(256, dtype=np.uint8)
    for code in range(256):
        present = {name: bool(code >> bit & 1) for name, (_, _, bit) in _NEIGHBOURS.items()}
        names = frozenset(name for name, on in present.items() if on)
        table[code] = _SKIMAGE_DEPARTURES.get(names, _paper_rule(present))
    return table


_TABLE = thinning_table()


def _codes(padded: np.ndarray) -> np.ndarray:
    """The neighbourhood code of every inner pixel of a padded 0/1 uint8 image."""
    h, w = padded.shape[0] - 2, padded.shape[1] - 2
    code = np.zeros((h, w), dtype=np.uint8)
    for dy, dx, bit in _NEIGHBOURS.values():
        code |= padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] << np.uint8(bit)
    return code


def skeletonize(mask: np.ndarray) -> np.ndarray:
    """The Zhang-Suen skeleton (bool, same shape) of a 2D mask (nonzero = foreground)."""
    if mask.ndim != 2:
        raise ValueError(f"skeletonize takes a 2D mask, got shape {mask.shape}")
    out = np.zeros(mask.shape, dtype=bool)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return out
    # Thinning is local and the border is background: work on the bounding box only.
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    padded = np.zeros((y1 - y0 + 2, x1 - x0 + 2), dtype=np.uint8)
    inner = padded[1:-1, 1:-1]
    inner[...] = mask[y0:y1, x0:x1] != 0
    removed = True
    while removed:
        removed = False
        for sub_pass in (1, 2):
            gone = (inner != 0) & ((_TABLE[_codes(padded)] & sub_pass) != 0)
            if gone.any():
                inner[gone] = 0
                removed = True
    out[y0:y1, x0:x1] = inner != 0
    return out
