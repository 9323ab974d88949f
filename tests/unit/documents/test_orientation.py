"""A page's orientation from its lines: the rotation from line shapes and upside-down votes, no
line of the page's direction turned on its own, exact turns and boxes mapped back."""

from __future__ import annotations

import numpy as np
import pytest

from ocrserve.documents.orientation import (
    flipped_lines,
    orient_pages,
    page_rotation,
    rotate_image,
    to_original,
    to_turned,
)


def _quad(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


WIDE = [_quad(10, 10 + 30 * k, 400, 34 + 30 * k) for k in range(6)]
TALL = [_quad(10 + 30 * k, 10, 34 + 30 * k, 400) for k in range(6)]


@pytest.mark.parametrize(
    ("quads", "upside_down", "rotation"),
    [(WIDE, 0.1, 0), (WIDE, 0.9, 180), (TALL, 0.1, 270), (TALL, 0.9, 90)],
)
def test_rotation_from_line_shapes_and_votes(
    quads: list[np.ndarray], upside_down: float, rotation: int
) -> None:
    assert page_rotation(quads, [upside_down] * len(quads)) == rotation


def test_long_lines_outvote_short_ones() -> None:
    # Two long upright lines against four short ones the classifier calls upside down.
    quads = [_quad(10, 10, 900, 34), _quad(10, 40, 900, 64)] + WIDE[:4]
    for q in quads[2:]:
        q[1, 0] = 60  # 50 px wide
        q[2, 0] = 60
    assert page_rotation(quads, [0.2, 0.2, 0.95, 0.95, 0.95, 0.95]) == 0
    assert page_rotation(quads, None) == 0
    assert page_rotation(TALL, None) == 270
    assert page_rotation([], None) == 0


def test_no_line_of_the_page_direction_is_turned_alone() -> None:
    # The classifier is sure one upright line is upside down (the mistake seen on real pages).
    scores = [0.05, 0.97, 0.05, 0.05, 0.05, 0.05]
    assert flipped_lines(WIDE, scores) == [False] * 6
    # Lines across the page's direction are turned together, by their own vote.
    quads = WIDE + TALL[:2]
    assert flipped_lines(quads, [0.05] * 6 + [0.9, 0.7]) == [False] * 6 + [True, True]
    assert flipped_lines(quads, [0.05] * 6 + [0.9, 0.1]) == [False] * 8


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_points_and_quads_follow_the_exact_turn(rotation: int) -> None:
    image = np.zeros((30, 50), np.uint8)
    image[4:8, 10:30] = 255  # a 20 x 4 "line" at x 10..29, y 4..7
    quad = _quad(10, 4, 29, 7)
    turned = rotate_image(image, rotation)
    if rotation in (90, 270):
        assert turned.shape == (50, 30)
    moved = to_turned(quad, rotation, 50, 30)
    xs, ys = moved[:, 0].astype(int), moved[:, 1].astype(int)
    assert turned[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].all()
    assert turned.sum() == image.sum()
    # Clockwise from the top-left corner in the turned image, and back where it was.
    assert moved[0, 0] <= moved[1, 0] and moved[0, 1] <= moved[3, 1]
    assert np.allclose(to_original(moved, rotation, 50, 30), np.roll(quad, rotation // 90, 0))


def test_a_turned_page_is_detected_again_upright_and_its_boxes_come_back() -> None:
    page = np.zeros((40, 100, 3), np.uint8)
    found = [(_quad(5 + 20 * k, 5, 15 + 20 * k, 35), 0.9) for k in range(4)]  # four tall lines
    seen: list[tuple[int, int]] = []

    def detect(image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        seen.append(image.shape[:2])
        return [(_quad(5, 5 + 20 * k, 35, 15 + 20 * k), 0.9) for k in range(4)]

    (oriented,) = orient_pages(
        [page],
        [found],
        crop=lambda image, quad: np.zeros((4, 8, 3), np.uint8),
        detect=detect,
        order=lambda quads: list(range(len(quads))),
        flip_scores=lambda crops: [0.1] * len(crops),
    )
    assert oriented.rotation == 270 and seen == [(100, 40)]
    # The first upright line (x 5..35, y 5..15 of the turned page) in the page as sent.
    first = oriented.lines[0][0]
    assert first.min(axis=0).tolist() == [84, 5] and first.max(axis=0).tolist() == [94, 35]
    assert len(oriented.crops) == 4
