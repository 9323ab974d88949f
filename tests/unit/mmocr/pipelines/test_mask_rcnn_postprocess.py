"""Mask R-CNN's post-processing: NumPy mask pasting against torch's ``grid_sample`` (what mmdet's
``_do_paste_mask`` calls), and masks -> boundaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ocrserve.mmocr.pipelines.postprocess import build_postprocessor
from ocrserve.mmocr.pipelines.postprocess.mask_rcnn import paste_mask


def _torch_paste(mask: np.ndarray, box: np.ndarray, img_h: int, img_w: int) -> np.ndarray:
    """mmdet 2.28's CPU path (one mask, ``skip_empty``), written with torch."""
    boxes = torch.from_numpy(box[None, :4])
    x0_int, y0_int = torch.clamp(boxes.min(dim=0).values.floor()[:2] - 1, min=0).to(torch.int32)
    x1_int = torch.clamp(boxes[:, 2].max().ceil() + 1, max=img_w).to(torch.int32)
    y1_int = torch.clamp(boxes[:, 3].max().ceil() + 1, max=img_h).to(torch.int32)
    x0, y0, x1, y1 = torch.split(boxes, 1, dim=1)
    img_y = torch.arange(y0_int, y1_int).to(torch.float32) + 0.5
    img_x = torch.arange(x0_int, x1_int).to(torch.float32) + 0.5
    img_y = (img_y - y0) / (y1 - y0) * 2 - 1
    img_x = (img_x - x0) / (x1 - x0) * 2 - 1
    img_x[torch.isinf(img_x)] = 0
    img_y[torch.isinf(img_y)] = 0
    gx = img_x[:, None, :].expand(1, img_y.size(1), img_x.size(1))
    gy = img_y[:, :, None].expand(1, img_y.size(1), img_x.size(1))
    grid = torch.stack([gx, gy], dim=3)
    return F.grid_sample(torch.from_numpy(mask[None, None]), grid, align_corners=False)[
        0, 0
    ].numpy()


@pytest.mark.parametrize("seed", range(8))
def test_paste_matches_grid_sample(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.uniform(0, 1, (28, 28)).astype(np.float32)
    x0, y0 = rng.uniform(-5, 110, 2)
    box = np.array([x0, y0, x0 + rng.uniform(0.5, 90), y0 + rng.uniform(0.5, 40)], np.float32)
    ours, top, left = paste_mask(mask, box, 120, 160)
    want = _torch_paste(mask, box, 120, 160)
    assert ours.shape == want.shape
    assert (top, left) == (max(int(np.floor(box[1])) - 1, 0), max(int(np.floor(box[0])) - 1, 0))
    # Bit-equal (measured on 40 boxes, AVX-512 and AVX2 kernels); a last-bit slip would be
    # tolerated by the parity tests, not here.
    np.testing.assert_array_equal(ours, want)


def test_boundaries_of_class_zero_only_in_detection_order() -> None:
    probs = np.zeros((3, 28, 28), np.float32)
    probs[:, 4:24, 4:24] = 0.9
    dets = np.array([[10, 10, 40, 30, 0.9], [50, 50, 90, 70, 0.8], [0, 0, 20, 20, 0.7]], np.float32)
    labels = np.array([0, 1, 0])
    output = [dets, labels, probs, dets[:, :4], np.array(3), np.array([100, 120])]
    quad = build_postprocessor({"type": "MaskRCNNPostprocessor"})(output)
    assert [b[-1] for b in quad] == pytest.approx([0.9, 0.7])
    assert all(len(b) == 9 for b in quad)
    xs, ys = quad[0][0:8:2], quad[0][1:8:2]
    assert 12 <= min(xs) and max(xs) <= 38 and 11 <= min(ys) and max(ys) <= 29
    poly = build_postprocessor({"type": "MaskRCNNPostprocessor", "text_repr_type": "poly"})
    assert len(poly(output)) == 2
    assert (
        build_postprocessor({"type": "MaskRCNNPostprocessor"})(
            [dets, labels, np.zeros_like(probs), dets[:, :4], np.array(3), np.array([100, 120])]
        )
        == []
    )
