from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from ocrserve.int8.agreement import detection_agreement, hmean_against, recognition_agreement

SQUARE = [0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0]


def _moved(dx: float) -> list[float]:
    return [v + dx if i % 2 == 0 else v for i, v in enumerate(SQUARE)]


def test_matches_need_iou_of_one_half_one_to_one() -> None:
    assert hmean_against([SQUARE], [SQUARE]) == 1
    assert hmean_against([SQUARE], [_moved(3.0)]) == 1  # IoU 7/13
    assert hmean_against([SQUARE], [_moved(4.0)]) == 0  # IoU 6/14
    assert hmean_against([SQUARE], [SQUARE, _moved(1.0)]) == 1  # one FP32 box, one match
    assert hmean_against([], [SQUARE]) == 0


class Fixed:
    """A predictor answering fixed results, one per call's image (by the image's first pixel)."""

    task = "textdet"

    def __init__(self, answers: Mapping[int, dict[str, Any]]) -> None:
        self.answers = answers

    def predict(self, images: Sequence[np.ndarray], options: Any = None) -> list[dict[str, Any]]:
        return [self.answers[int(img[0, 0, 0])] for img in images]


def _pages(n: int) -> list[np.ndarray]:
    return [np.full((4, 4, 3), i, np.uint8) for i in range(n)]


def test_detection_hmean_pools_pages() -> None:
    fp32 = Fixed({0: {"boundary_result": [[*SQUARE, 0.9]]}, 1: {"boundary_result": [
        [*SQUARE, 0.9], [*_moved(50), 0.8]]}})  # fmt: skip
    int8 = Fixed({0: {"boundary_result": [[*SQUARE, 0.9]]}, 1: {"boundary_result": [
        [*SQUARE, 0.9]]}})  # fmt: skip
    result = detection_agreement(fp32, int8, _pages(2))  # type: ignore[arg-type]
    # 2 of 3 FP32 boxes found, no extra box: P = 1, R = 2/3, H = 0.8
    assert result.value == pytest.approx(0.8)
    assert result.disagreement_points == pytest.approx(20.0)
    assert result.to_json()["fp32_boxes"] == 3 and result.to_json()["int8_boxes"] == 2


def test_recognition_agreement_counts_exact_texts() -> None:
    fp32 = Fixed({0: {"text": "ab"}, 1: {"text": "cd"}, 2: {"text": "ef"}, 3: {"text": "x"}})
    int8 = Fixed({0: {"text": "ab"}, 1: {"text": "cD"}, 2: {"text": "ef"}, 3: {"text": "x"}})
    result = recognition_agreement(fp32, int8, _pages(4), batch=3)  # type: ignore[arg-type]
    assert result.value == pytest.approx(0.75) and result.detail == {"differing": 1}
