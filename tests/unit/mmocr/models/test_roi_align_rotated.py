"""`roi_align_rotated` (mmcv 1.x's ``RoIAlignRotated``) on maps whose answer is known."""

from __future__ import annotations

import math

import torch

from ocrserve.mmocr.models.roi_align_rotated import roi_align_rotated


def _ramp(height: int = 40, width: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """A 2-channel map: x, then y (bilinear sampling reproduces both exactly inside the map)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    return torch.stack([xs, ys])[None], torch.stack([xs, ys])


def test_unrotated_bins_average_to_their_centres() -> None:
    feats, _ = _ramp()
    # Centre (20.5, 15.5) in pixel-corner coordinates: (20, 15) once aligned shifts it by 0.5.
    rois = torch.tensor([[0.0, 20.5, 15.5, 12.0, 8.0, 0.0]])
    out = roi_align_rotated(feats, rois, (2, 3))
    # Width 12 in 3 bins of 4: centres x = 20 - 6 + 2, + 4, + 8; height 8 in 2 bins of 4.
    assert torch.allclose(out[0, 0], torch.tensor([[16.0, 20.0, 24.0]] * 2))
    assert torch.allclose(out[0, 1], torch.tensor([[13.0] * 3, [17.0] * 3]))


def test_a_quarter_turn_follows_mmcvs_rotation() -> None:
    """mmcv samples (y, x) = (yy cos - xx sin, yy sin + xx cos) + centre for bin offsets
    (yy, xx): at +90 degrees the box's width runs along -y and its height along +x."""
    feats, _ = _ramp()
    rois = torch.tensor([[0.0, 20.5, 15.5, 12.0, 8.0, math.pi / 2]])
    out = roi_align_rotated(feats, rois, (2, 3))
    assert torch.allclose(out[0, 1], torch.tensor([[19.0, 15.0, 11.0]] * 2), atol=1e-4)
    assert torch.allclose(out[0, 0], torch.tensor([[18.0] * 3, [22.0] * 3]), atol=1e-4)
    clockwise = roi_align_rotated(feats, rois, (2, 3), clockwise=True)
    assert torch.allclose(clockwise[0, 1], torch.tensor([[11.0, 15.0, 19.0]] * 2), atol=1e-4)
    assert torch.allclose(clockwise[0, 0], torch.tensor([[22.0] * 3, [18.0] * 3]), atol=1e-4)


def test_samples_far_outside_count_as_zero_and_the_batch_index_is_read() -> None:
    feats, _ = _ramp()
    two = torch.cat([feats, feats + 100.0])
    outside = roi_align_rotated(two, torch.tensor([[0.0, -30.0, -30.0, 4.0, 4.0, 0.0]]), (1, 1))
    assert float(outside.abs().max()) == 0.0
    second = roi_align_rotated(two, torch.tensor([[1.0, 20.5, 15.5, 4.0, 4.0, 0.0]]), (1, 1))
    assert torch.allclose(second[0, :, 0, 0], torch.tensor([120.0, 115.0]))
