"""valid_ratio masks: MMOCR's ``min(W, ceil(W * ratio))`` exactly, from numbers or a tensor."""

from __future__ import annotations

import math

import torch

from ocrserve.mmocr.models.valid_ratio import column_is_valid, valid_ratios, valid_widths


def test_widths_equal_python_ceil_where_float32_would_not() -> None:
    # 25 * 0.6 is 15 in float64, but 15.000001 in float32 (ceil 16): the ratios stay float64.
    cases = [
        (w, r / d) for w in (1, 7, 25, 40, 160) for d in (3, 7, 10, 100, 160) for r in range(d + 3)
    ]
    ratios = torch.tensor([r for _, r in cases], dtype=torch.float64)
    for width in {w for w, _ in cases}:
        want = [min(width, math.ceil(width * r)) for r in ratios.tolist()]
        assert valid_widths(width, ratios).tolist() == want
    assert valid_widths(25, torch.tensor([0.6], dtype=torch.float64)).tolist() == [15]


def test_ratios_from_numbers_tensors_and_defaults() -> None:
    like = torch.zeros(1)
    assert valid_ratios(None, like=like) is None
    assert valid_ratios([{"valid_ratio": 0.5}], mask=False, like=like) is None
    got = valid_ratios(
        [{"valid_ratio": 0.5}, {}, {"valid_ratio": torch.tensor([0.25, 1.0])}], like=like
    )
    assert got is not None and got.dtype == torch.float64
    assert got.tolist() == [0.5, 1.0, 0.25, 1.0]
    batch = valid_ratios(
        [{"valid_ratio": torch.tensor([0.3, 0.7], dtype=torch.float64)}], like=like
    )
    assert batch is not None and batch.tolist() == [0.3, 0.7]


def test_column_is_valid() -> None:
    ratios = torch.tensor([1.0, 0.5, 0.01], dtype=torch.float64)
    mask = column_is_valid(4, ratios)
    assert mask.tolist() == [[True] * 4, [True, True, False, False], [True, False, False, False]]
    assert column_is_valid(3, torch.tensor([0.5], dtype=torch.float64)).shape == (1, 3)
