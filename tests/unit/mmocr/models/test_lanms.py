"""`merge_quadrangle_n9` (lanms's locality-aware NMS) on quadrangles whose answer is known."""

from __future__ import annotations

import numpy as np

from ocrserve.mmocr.models.lanms import merge_quadrangle_n9


def _square(x: float, y: float, side: float, score: float) -> list[float]:
    return [x, y, x + side, y, x + side, y + side, x, y + side, score]


def test_overlapping_neighbours_merge_by_score_weighted_mean() -> None:
    quads = np.array([_square(0, 0, 10, 1.0), _square(1, 0, 10, 3.0)])
    out = merge_quadrangle_n9(quads, 0.3)
    assert out.shape == (1, 9)
    assert np.allclose(out[0, :8], _square(0.75, 0, 10, 0)[:8], atol=1e-4)
    assert out[0, 8] == np.float32(4.0)  # the merged score is the sum


def test_a_merged_quadrangle_keeps_its_vertex_order() -> None:
    """The second square lists its vertices from another corner: lanms matches the order (its
    reversed candidates; the rotations of the same direction are never tried)."""
    first = _square(0, 0, 10, 1.0)
    second = np.array(_square(0, 0, 10, 1.0)).copy()
    second[:8] = np.array(first[:8]).reshape(4, 2)[::-1].reshape(-1)  # reversed order
    out = merge_quadrangle_n9(np.array([first, second]), 0.3)
    assert out.shape == (1, 9)
    assert np.allclose(out[0, :8], first[:8], atol=1e-4)


def test_far_quadrangles_stay_and_come_highest_score_first() -> None:
    quads = np.array([_square(0, 0, 10, 0.5), _square(50, 0, 10, 0.9), _square(0, 50, 10, 0.7)])
    out = merge_quadrangle_n9(quads, 0.3)
    assert out[:, 8].tolist() == np.float32([0.9, 0.7, 0.5]).tolist()


def test_standard_nms_suppresses_what_the_first_pass_kept_apart() -> None:
    """Only neighbours in input order merge; a later overlapping one is suppressed by NMS."""
    quads = np.array([_square(0, 0, 10, 0.6), _square(50, 0, 10, 0.9), _square(1, 0, 10, 0.8)])
    out = merge_quadrangle_n9(quads, 0.3)
    assert out[:, 8].tolist() == np.float32([0.9, 0.8]).tolist()
    assert merge_quadrangle_n9(np.zeros((0, 9))).shape == (0, 9)
