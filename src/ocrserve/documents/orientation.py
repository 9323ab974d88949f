"""A page's orientation decided from all its lines, before any line is turned on its own.

The detector finds lines whatever way the page faces. Each line counts for its length (its
quadrilateral's longer side): lines much taller than wide (`TURNED`, the rule by which
`ocrserve.ppocr.e2e.crop_quad` turns a crop a quarter counter-clockwise) vote for a page on
its side, the others for a page upright or upside down; the larger total is the page's *axis*.
The angle classifier's score that a crop is upside down, averaged over the lines of that axis
(each weighted by its length), says which of the two ways the page faces. Hence the *rotation*
(0, 90, 180 or 270): the clockwise turn that makes the page upright, as Tesseract's "Rotate"
and a PDF page's /Rotate give it. A turned page is turned exactly (`numpy.rot90`), its lines
detected again and read as on an upright page; their boxes come back in the pixels of the
page as sent, each quadrilateral starting at its text's top-left corner.

On the upright page no line of the page's axis is turned by the classifier: a page's lines
face one way. Lines across the axis (a table's turned headings, a margin note) are turned
together, by the same length-weighted vote among them. Without a classifier the page is only
told upright from on its side (rotation 0 or 270).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "TURNED",
    "OrientedPage",
    "flipped_lines",
    "orient_pages",
    "page_rotation",
    "rotate_image",
    "to_original",
    "to_turned",
    "turned",
]

#: A line this much taller than wide is read turned a quarter (`crop_quad`'s rule).
TURNED = 1.5

Quad = np.ndarray
Line = tuple[np.ndarray, float]
#: ``crop(image, quad)``: the line's pixels, upright when the page is (turned a quarter
#: counter-clockwise when the quadrilateral is `TURNED`).
Crop = Callable[[np.ndarray, Quad], np.ndarray]
#: ``flip_scores(crops)``: each crop's probability of being upside down.
FlipScores = Callable[[Sequence[np.ndarray]], Sequence[float]]
#: ``detect(image)``: the image's lines, ``(quad, score)``, quadrilaterals clockwise from the
#: top-left corner.
Detect = Callable[[np.ndarray], list[Line]]
#: ``order(quads)``: the lines' indices in reading order.
Order = Callable[[Sequence[Quad]], list[int]]


def _sides(quad: Quad) -> tuple[float, float]:
    pts = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    width = max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3]))
    height = max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2]))
    return float(width), float(height)


def turned(quad: Quad) -> bool:
    """Whether the line is read turned a quarter (`TURNED` times taller than wide)."""
    width, height = _sides(quad)
    return height >= TURNED * width


def _weights(quads: Sequence[Quad]) -> np.ndarray:
    return np.array([max(_sides(q)) for q in quads], dtype=np.float64)


def page_rotation(quads: Sequence[Quad], flip: Sequence[float] | None) -> int:
    """The clockwise turn (0, 90, 180, 270) that makes the page of these lines upright, from
    their shapes and, when given, each crop's probability of being upside down."""
    if not quads:
        return 0
    weights = _weights(quads)
    sideways = np.array([turned(q) for q in quads])
    on_side = bool(weights[sideways].sum() > weights[~sideways].sum())
    axis = sideways == on_side
    upside_down = False
    if flip is not None:
        scores = np.asarray(flip, dtype=np.float64)
        upside_down = bool(np.average(scores[axis], weights=weights[axis]) > 0.5)
    if on_side:
        # A turned crop is turned back counter-clockwise: text that then reads upright ran
        # down the page, whose content was turned clockwise (made upright by 270 more).
        return 90 if upside_down else 270
    return 180 if upside_down else 0


def flipped_lines(quads: Sequence[Quad], flip: Sequence[float] | None) -> list[bool]:
    """Which lines of an upright page to turn by 180 degrees: none of the page's axis; those
    across it all or none, by their length-weighted vote."""
    out = [False] * len(quads)
    if flip is None or not quads:
        return out
    weights = _weights(quads)
    sideways = np.array([turned(q) for q in quads])
    on_side = bool(weights[sideways].sum() > weights[~sideways].sum())
    across = sideways != on_side
    if across.any():
        scores = np.asarray(flip, dtype=np.float64)
        if np.average(scores[across], weights=weights[across]) > 0.5:
            out = [bool(a) for a in across]
    return out


def rotate_image(image: np.ndarray, rotation: int) -> np.ndarray:
    """The image turned ``rotation`` degrees clockwise (exactly: no resampling)."""
    return np.ascontiguousarray(np.rot90(image, -(rotation // 90) % 4))


def to_original(points: np.ndarray, rotation: int, width: int, height: int) -> np.ndarray:
    """Points of the image turned ``rotation`` degrees clockwise, in the pixels of the
    original ``width`` x ``height`` image (the inverse of `rotate_image` on pixel positions)."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    u, v = pts[:, 0], pts[:, 1]
    if rotation == 90:  # original (x, y) -> turned (height - 1 - y, x)
        x, y = v, height - 1 - u
    elif rotation == 180:
        x, y = width - 1 - u, height - 1 - v
    elif rotation == 270:  # original (x, y) -> turned (y, width - 1 - x)
        x, y = width - 1 - v, u
    else:
        x, y = u, v
    return np.stack([x, y], axis=1).astype(np.float32)


def to_turned(quad: Quad, rotation: int, width: int, height: int) -> Quad:
    """A quadrilateral of the original ``width`` x ``height`` image in the pixels of the image
    turned ``rotation`` degrees clockwise, still clockwise from its top-left corner there."""
    pts = np.asarray(quad, dtype=np.float32).reshape(-1, 2)
    x, y = pts[:, 0], pts[:, 1]
    if rotation == 90:
        u, v = height - 1 - y, x
    elif rotation == 180:
        u, v = width - 1 - x, height - 1 - y
    elif rotation == 270:
        u, v = y, width - 1 - x
    else:
        u, v = x, y
    turned_pts = np.stack([u, v], axis=1).astype(np.float32)
    return np.roll(turned_pts, rotation // 90, axis=0)


@dataclass
class OrientedPage:
    """An image's lines as read: the turn applied, the lines (quadrilaterals in the image's
    own pixels, in reading order) and their crops, upright."""

    rotation: int
    lines: list[Line] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)


def _turn_crops(crops: list[np.ndarray], flips: Sequence[bool]) -> list[np.ndarray]:
    return [np.ascontiguousarray(c[::-1, ::-1]) if f else c for c, f in zip(crops, flips)]


def orient_pages(
    images: Sequence[np.ndarray],
    detected: Sequence[list[Line]],
    *,
    crop: Crop,
    detect: Detect,
    order: Order,
    flip_scores: FlipScores | None,
) -> list[OrientedPage]:
    """Each image's rotation decided from its ``detected`` lines, the turned ones detected
    again upright, lines in ``order``, crops turned as the page evidence says."""
    crops = [[crop(img, quad) for quad, _ in lines] for img, lines in zip(images, detected)]
    scores = _scores(crops, flip_scores, lambda quad: True, detected)
    rotations = [page_rotation([q for q, _ in lines], s) for lines, s in zip(detected, scores)]
    upright_images = list(images)
    lines_of = list(detected)
    for n, rotation in enumerate(rotations):
        if rotation:
            upright_images[n] = rotate_image(images[n], rotation)
            # Detected again, not the boxes turned: measured better (docs/outputs.md).
            lines_of[n] = detect(upright_images[n])
            crops[n] = [crop(upright_images[n], quad) for quad, _ in lines_of[n]]
    # Only lines across the page's axis can be turned: only theirs are asked about again.
    again = [n for n, r in enumerate(rotations) if r]
    fresh = _scores([crops[n] for n in again], flip_scores, turned, [lines_of[n] for n in again])
    for n, s in zip(again, fresh):
        scores[n] = s
    pages = []
    for n, image in enumerate(images):
        lines, page_crops, rotation = lines_of[n], crops[n], rotations[n]
        quads = [q for q, _ in lines]
        flips = flipped_lines(quads, scores[n])
        page_crops = _turn_crops(page_crops, flips)
        ranked = order(quads)
        height, width = image.shape[:2]
        if rotation:
            lines = [(to_original(q, rotation, width, height), s) for q, s in lines]
        pages.append(
            OrientedPage(rotation, [lines[i] for i in ranked], [page_crops[i] for i in ranked])
        )
    return pages


def _scores(
    crops: Sequence[list[np.ndarray]],
    flip_scores: FlipScores | None,
    wanted: Callable[[Quad], bool],
    lines: Sequence[list[Line]],
) -> list[list[float] | None]:
    """Each image's upside-down scores, the classifier run once over the ``wanted`` lines of
    all images (0 for the others); None per image without a classifier."""
    if flip_scores is None:
        return [None] * len(crops)
    asked = [
        (n, k) for n, image_lines in enumerate(lines) for k, (q, _) in enumerate(image_lines)
        if wanted(q)
    ]  # fmt: skip
    found = list(flip_scores([crops[n][k] for n, k in asked])) if asked else []
    out: list[list[float] | None] = [[0.0] * len(c) for c in crops]
    for (n, k), score in zip(asked, found):
        page = out[n]
        assert page is not None
        page[k] = float(score)
    return out
