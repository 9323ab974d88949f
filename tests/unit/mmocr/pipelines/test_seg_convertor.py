"""SegConvertor: SegOCR's class map -> characters and scores, on synthetic maps."""

from __future__ import annotations

import numpy as np
import torch

from ocrserve.mmocr.pipelines.postprocess import build_convertor
from ocrserve.mmocr.pipelines.postprocess.seg import SegConvertor

A, B, UKN = 11, 12, 37  # 'a', 'b' and <UKN> with DICT36


def _convertor() -> SegConvertor:
    convertor = build_convertor({"type": "SegConvertor", "dict_type": "DICT36", "lower": True})
    assert isinstance(convertor, SegConvertor)
    return convertor


def _logits(classes: np.ndarray, num_classes: int = 38) -> torch.Tensor:
    """``1 x num_classes x H x W`` logits whose arg-max is ``classes``."""
    out = torch.zeros(1, num_classes, *classes.shape)
    out[0].scatter_(0, torch.from_numpy(classes).long()[None], 1.0)
    return out


def _read(classes: np.ndarray, valid_ratio: float = 1.0) -> tuple[str, list[float]]:
    convertor = _convertor()
    indexes, scores = convertor.tensor2idx(_logits(classes), [{"valid_ratio": valid_ratio}])
    return convertor.idx2str(indexes)[0], scores[0]


def test_table() -> None:
    convertor = _convertor()
    assert convertor.num_classes() == 38
    assert convertor.idx2char[0] == "<BG>" and convertor.idx2char[UKN] == "<UKN>"
    assert convertor.unknown_idx == UKN and convertor.idx2char[A] == "a"


def test_components_read_left_to_right_with_majority_scores() -> None:
    classes = np.zeros((10, 40), np.int32)
    classes[2:8, 25:30] = A  # 30 px 'a' on the right
    classes[2:8, 5:10] = B  # 30 px, of which 10 are 'a': majority 'b', score 20/30
    classes[2:4, 5:10] = A
    assert _read(classes) == ("ba", [20 / 30, 1.0])


def test_small_components_dropped_and_unknown_kept_as_empty() -> None:
    classes = np.zeros((10, 60), np.int32)
    classes[0:4, 0:5] = A  # 20 px: kept
    classes[6:10, 10:14] = B  # 16 px: dropped
    classes[0:5, 30:35] = UKN  # 25 px: '' with its score
    classes[0:5, 50:55] = B
    text, scores = _read(classes)
    assert text == "ab" and scores == [1.0, 1.0, 1.0]


def test_diagonal_neighbours_are_one_component() -> None:
    classes = np.zeros((12, 12), np.int32)
    classes[0:5, 0:5] = A  # 25 px
    classes[5:10, 5:10] = B  # 25 px, touching at a corner: one 50 px component
    text, scores = _read(classes)
    assert text == "a" and scores == [0.5]


def test_valid_ratio_limits_the_columns() -> None:
    classes = np.zeros((10, 40), np.int32)
    classes[2:8, 2:8] = A
    classes[2:8, 30:36] = B
    assert _read(classes, valid_ratio=0.5)[0] == "a"  # columns 0..20


def test_map_without_background() -> None:
    assert _read(np.full((6, 8), B, np.int32)) == ("b", [1.0])
