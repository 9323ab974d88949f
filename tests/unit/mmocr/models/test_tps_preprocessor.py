"""TPSPreprocessor: RARE's thin-plate-spline rectification in front of CRNN."""

from __future__ import annotations

import torch

from ocrserve.mmocr.models.builder import PREPROCESSORS
from ocrserve.mmocr.models.preprocessors.tps_preprocessor import GridGenerator, TPSPreprocessor


def _build() -> TPSPreprocessor:
    tps = PREPROCESSORS.build({"type": "TPSPreprocessor", "num_fiducial": 20})
    assert isinstance(tps, TPSPreprocessor)
    return tps.eval()


def test_output_is_the_rectified_size_for_any_input() -> None:
    tps = _build()
    with torch.inference_mode():
        for shape in ((1, 1, 32, 100), (2, 1, 48, 160), (1, 1, 32, 64)):
            assert tps(torch.randn(shape)).shape == (shape[0], 1, 32, 100)


def test_batched_equals_one_by_one() -> None:
    tps = _build()
    images = torch.randn(3, 1, 32, 100)
    with torch.inference_mode():
        batched = tps(images)
        single = torch.cat([tps(images[i : i + 1]) for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-6)


def test_the_spline_reproduces_affine_maps() -> None:
    grid = GridGenerator(20, (32, 100))
    points = grid.P_hat[:, 1:3]  # the rectified image's pixel centres
    fiducial = torch.cat(
        [
            torch.stack([torch.linspace(-1, 1, 10), -torch.ones(10)], 1),
            torch.stack([torch.linspace(-1, 1, 10), torch.ones(10)], 1),
        ]
    )
    affine = torch.tensor([[0.5, 0.1], [-0.2, 0.8]])
    shift = torch.tensor([0.1, -0.3])
    moved = grid.build_P_prime((fiducial @ affine.T + shift)[None])
    assert moved.shape == (1, 3200, 2)
    # (float32: the radial terms cancel to ~1e-5)
    assert torch.allclose(moved[0], points @ affine.T + shift, atol=1e-4)


def test_mmocr_names() -> None:
    names = set(_build().state_dict())
    assert {
        "LocalizationNetwork.conv.0.weight",
        "LocalizationNetwork.conv.13.running_var",
        "LocalizationNetwork.localization_fc1.0.weight",
        "LocalizationNetwork.localization_fc2.bias",
        "GridGenerator.inv_delta_C",
        "GridGenerator.P_hat",
    } <= names
    assert "LocalizationNetwork.conv.0.bias" not in names
