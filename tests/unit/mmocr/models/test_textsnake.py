"""TextSnake: FPN_UNet neck, TextSnakeHead, Zhang-Suen thinning, numpy 1.x argsort order and
TextSnakePostprocessor (centralize, merge_disks, polygons)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.models.detectors import SingleStageTextDetector
from ocrserve.mmocr.models.necks.fpn_unet import FPN_UNet
from ocrserve.mmocr.pipelines.postprocess import build_postprocessor, textsnake
from ocrserve.mmocr.pipelines.postprocess.centre_line import Region, centralize
from ocrserve.mmocr.pipelines.postprocess.fce import fill_hole
from ocrserve.mmocr.pipelines.postprocess.introsort import legacy_argsort
from ocrserve.mmocr.pipelines.postprocess.textsnake import merge_disks
from ocrserve.mmocr.pipelines.postprocess.thinning import skeletonize, thinning_table
from tests.prerequisites import tool_skip_reason


def textsnake_config() -> dict[str, object]:
    return {
        "type": "TextSnake",
        "backbone": {"type": "mmdet.ResNet", "depth": 50, "base_channels": 4, "style": "caffe"},
        "neck": {"type": "FPN_UNet", "in_channels": [16, 32, 64, 128], "out_channels": 8},
        "bbox_head": {
            "type": "TextSnakeHead",
            "in_channels": 8,
            "loss": {"type": "TextSnakeLoss"},
            "postprocessor": {"type": "TextSnakePostprocessor", "text_repr_type": "poly"},
        },
        "train_cfg": None,
        "test_cfg": None,
    }


def test_textsnake_output_is_full_size_with_mmocr_names() -> None:
    model = build_model(textsnake_config())
    assert isinstance(model, SingleStageTextDetector) and model.downsample_ratio == 1.0
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 64, 96)).shape == (1, 5, 64, 96)
    keys = set(model.state_dict())
    assert {"neck.up4.weight", "neck.up_block0.deconv.bias", "bbox_head.out_conv.weight"} <= keys
    assert model.postprocessor_config() == {
        "type": "TextSnakePostprocessor",
        "text_repr_type": "poly",
    }


def test_fpn_unet_block_widths_as_mmocr_computes_them() -> None:
    neck = FPN_UNet([256, 512, 1024, 2048], 32)
    shapes = {k: tuple(v.shape) for k, v in neck.state_dict().items()}
    assert shapes["up4.weight"] == (2048, 256, 4, 4)
    assert shapes["up_block3.conv1x1.weight"] == (1280, 1280, 1, 1)
    assert shapes["up_block2.conv3x3.weight"] == (64, 640, 3, 3)
    assert shapes["up_block1.deconv.weight"] == (32, 32, 4, 4)
    assert shapes["up_block0.conv1x1.weight"] == (32, 32, 1, 1)
    with pytest.raises(ConfigError, match="4 input levels"):
        FPN_UNet([256, 512, 1024], 32)


# -- thinning --------------------------------------------------------------------------------


def _grid(rows: list[str]) -> np.ndarray:
    return np.array([[c == "#" for c in row] for row in rows], dtype=np.uint8)


def test_thinning_table_departs_from_the_paper_where_skimage_does() -> None:
    table = thinning_table()
    assert table.shape == (256,) and set(np.unique(table)) <= {0, 1, 2, 3}
    # N and E only (bits 2 + 8): a staircase corner, kept by the paper, removed by skimage.
    assert table[2 | 8] == 3
    # SE and S only: an end pixel, removed by the paper, kept by skimage.
    assert table[16 | 32] == 0
    # N, E, S, W all set: interior of a cross, never removed.
    assert table[2 | 8 | 32 | 128] == 0


@pytest.mark.parametrize(
    ("image", "skeleton"),
    [
        # skimage's docstring example: an ellipse thins to a vertical segment.
        (
            [
                "...###...",
                "..#####..",
                "..#####..",
                "..#####..",
                "..#####..",
                "..#####..",
                "..#####..",
                "..#####..",
                "...###...",
            ],
            [
                ".........",
                ".........",
                ".........",
                "....#....",
                "....#....",
                "....#....",
                "....#....",
                ".........",
                ".........",
            ],
        ),
        # A 2x2 square keeps its top row (the paper's rule would erase it).
        (["......", "..##..", "..##..", "......"], ["......", "..##..", "......", "......"]),
        # A 3-pixel-thick bar.
        (
            ["............", ".##########.", ".##########.", ".##########.", "............"],
            ["............", ".........#..", ".########...", "............", "............"],
        ),
        (["...", ".#.", "..."], ["...", ".#.", "..."]),
        (["....", "...."], ["....", "...."]),
    ],
)
def test_skeletonize_known_cases(image: list[str], skeleton: list[str]) -> None:
    assert np.array_equal(skeletonize(_grid(image)), _grid(skeleton).astype(bool))


def test_skeletonize_at_the_border_and_on_bool_input() -> None:
    mask = np.ones((3, 8), bool)
    assert np.array_equal(skeletonize(mask), skeletonize(mask.astype(np.uint8) * 7))
    assert skeletonize(mask).sum() > 0


def test_skeletonize_equals_skimage() -> None:
    reason = tool_skip_reason("scikit-image", "pip install -e '.[test]'")
    morphology = pytest.importorskip("skimage.morphology", reason=reason)
    rng = np.random.default_rng(0)
    for case in range(120):
        h, w = (int(v) for v in rng.integers(3, 50, 2))
        mask = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        if case % 2:
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        assert np.array_equal(skeletonize(mask), morphology.skeletonize(mask)), case


# -- numpy 1.x argsort ------------------------------------------------------------------------


def test_legacy_argsort_is_numpys_introsort() -> None:
    # numpy still sorts object arrays with the introsort that sorted float64 in numpy 1.x.
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 300))
        values = rng.integers(0, int(rng.integers(1, 40)), n).astype(np.float64)
        expected = np.argsort(values.astype(object), kind="quicksort")
        assert np.array_equal(legacy_argsort(values), expected)


def test_legacy_argsort_sorts_with_nan_last() -> None:
    values = np.array([3.0, np.nan, 1.0, 2.0, np.nan, 0.5] * 5)
    order = legacy_argsort(values)
    assert sorted(order.tolist()) == list(range(len(values)))
    assert np.array_equal(values[order][:20], np.sort(values)[:20])
    assert np.isnan(values[order][20:]).all()


# -- centralize and merge_disks ---------------------------------------------------------------


def _stepping_centralize(
    points: np.ndarray, nsin: np.ndarray, ncos: np.ndarray, radius: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """MMOCR's centralize taken one step at a time."""
    h, w = mask.shape
    inside = mask.astype(bool).tolist()
    steps = (0.03 * radius * np.hstack([nsin, ncos])).astype(np.float64).tolist()
    ends = []
    for sign in (1.0, -1.0):
        walked = []
        for (y0, x0), (dy, dx) in zip(points.tolist(), steps):
            y, x = float(y0), float(x0)  # Python floats add like float64, int() truncates
            while True:
                ny, nx = y + sign * dy, x + sign * dx
                if not (0 <= int(ny) < h and 0 < int(nx) < w and inside[int(ny)][int(nx)]):
                    break
                y, x = ny, nx
            walked.append((y, x))
        ends.append(np.array(walked))
    return np.array((ends[0] + ends[1]) * 0.5, dtype=np.int32)


def test_centralize_equals_stepping_short_and_long_walks() -> None:
    rng = np.random.default_rng(2)
    for case in range(12):
        mask = np.zeros((24, 40), np.uint8)
        cv2.ellipse(mask, (20, 12), (18, 5), float(rng.uniform(0, 180)), 0, 360, (1,), -1)
        points = np.argwhere(mask > 0)
        n = len(points)
        angle = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
        nsin, ncos = np.sin(angle).reshape(-1, 1), np.cos(angle).reshape(-1, 1)
        if case % 3 == 0:
            nsin[: n // 2] = 0  # straight along x: one coordinate never moves
        # Radii from 0.3 px (steps of 0.01 px, walks of hundreds of steps) to 100 px (3 px).
        radius = (rng.choice([-1, 1], n) * 10 ** rng.uniform(-0.5, 2, n)).astype(np.float32)
        radius = radius.reshape(-1, 1)
        got = centralize(points, nsin, ncos, radius, mask)
        assert np.array_equal(got, _stepping_centralize(points, nsin, ncos, radius, mask))
        # The mask cut to its box, placed where it was, walks the same.
        (top, bottom), (left, right) = ((v.min(), v.max() + 1) for v in np.nonzero(mask))
        region = Region(mask[top:bottom, left:right], int(top), int(left))
        assert np.array_equal(centralize(points, nsin, ncos, radius, region), got)


def test_centralize_stops_points_that_would_never_leave() -> None:
    mask = np.ones((10, 10), np.uint8)
    points = np.array([[5, 5], [2, 3]])
    zero = np.zeros((2, 1), np.float32)
    ones = np.ones((2, 1), np.float32)
    assert np.array_equal(centralize(points, ones, zero, zero, mask), points)


def _looping_merge_disks(disks: np.ndarray, thr: float) -> np.ndarray:
    """MMOCR's merge_disks loop, one disk against all the remaining ones per round."""
    order = legacy_argsort(disks[:, 3])[::-1]
    merged = []
    while order.size > 0:
        i, rest = order[0], order[1:]
        dist = np.linalg.norm(disks[i, :2] - disks[rest, :2], axis=1)
        limit = (disks[i, 2] + disks[rest, 2]) * thr
        close = rest[dist <= limit]
        merged.append(np.mean(disks[np.hstack([i, close])], axis=0) if close.size else disks[i])
        order = rest[dist > limit]
    return np.vstack(merged)


@pytest.mark.parametrize("budget", [None, 50])
def test_merge_disks_equals_mmocrs_loop(
    budget: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if budget is not None:  # too many pairs to list: MMOCR's rounds
        monkeypatch.setattr(textsnake, "_PAIR_BUDGET", budget)
    rng = np.random.default_rng(4)
    for case in range(40):
        n = int(rng.integers(1, 400))
        xy = rng.integers(0, int(rng.integers(2, 60)), (n, 2)).astype(np.float64)
        radius = rng.uniform(-5, 60, n).astype(np.float32).astype(np.float64)
        score = rng.choice(rng.random(int(rng.integers(1, 30))), n).astype(np.float32)
        disks = np.hstack([xy, radius[:, None], score.astype(np.float64)[:, None]])
        if case % 4 == 0:
            disks[rng.integers(0, n, 3), int(rng.integers(0, 3))] = np.nan
        got = merge_disks(disks, 0.03)
        assert np.array_equal(got, _looping_merge_disks(disks, 0.03), equal_nan=True), case


def test_merge_disks_averages_close_disks_highest_score_first() -> None:
    disks = np.array(
        [
            [10.0, 10.0, 10.0, 0.9],
            [10.2, 10.0, 10.0, 0.8],  # 0.2 <= (10 + 10) * 0.03: merged into the first
            [40.0, 10.0, 10.0, 0.7],
            [40.0, 10.0, 10.0, 0.95],  # best: taken first, merged with its twin
        ]
    )
    merged = merge_disks(disks, 0.03)
    assert np.allclose(merged, [[40.0, 10.0, 10.0, 0.825], [10.1, 10.0, 10.0, 0.85]])
    assert merge_disks(np.zeros((0, 4)), 0.03).shape == (0, 4)


# -- the postprocessor ------------------------------------------------------------------------


def _horizontal_text() -> np.ndarray:
    preds = np.full((5, 40, 80), -5.0, np.float32)
    preds[0, 10:31, 10:71] = 5.0  # text region
    preds[1, 17:24, 15:66] = 5.0  # centre line
    preds[2], preds[3], preds[4] = 0.0, 1.0, 10.0  # horizontal text, radius 10
    return preds


def test_postprocessor_on_a_synthetic_text_line() -> None:
    post = build_postprocessor({"type": "TextSnakePostprocessor", "text_repr_type": "poly"})
    boundaries = post(_horizontal_text())
    assert len(boundaries) == 1 and len(boundaries[0]) % 2 == 1
    xs, ys = boundaries[0][0:-1:2], boundaries[0][1:-1:2]
    # Disks of radius int(10 * 1.03) = 10 along the centre line (x 16..64, y 20).
    assert (min(xs), max(xs), min(ys), max(ys)) == (7, 73, 10, 30)
    assert 0.9 < boundaries[0][-1] < 1.0


def test_postprocessor_skips_small_regions_and_zero_radii() -> None:
    post = build_postprocessor({"type": "TextSnakePostprocessor"})
    preds = _horizontal_text()
    preds[4] = 0.0  # MMOCR 0.6.3 never returns here (its walk does not move)
    assert post(preds) == []
    preds = _horizontal_text()
    preds[1] = -5.0
    preds[1, 19:22, 20:28] = 5.0  # centre region of area < 30
    assert post(preds) == []


def test_postprocessor_rejects_quad_and_bad_maps() -> None:
    with pytest.raises(ConfigError, match="poly"):
        build_postprocessor({"type": "TextSnakePostprocessor", "text_repr_type": "quad"})
    with pytest.raises(ValueError, match="5 x H x W"):
        build_postprocessor({"type": "TextSnakePostprocessor"})(np.zeros((3, 4, 4), np.float32))


def test_external_contours_of_a_filled_mask_are_the_tree_contours() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        mask = fill_hole(rng.random((40, 60)) < 0.45).astype(np.uint8)
        tree, _ = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
        external, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        assert len(tree) == len(external)
        assert all(np.array_equal(a, b) for a, b in zip(tree, external))
