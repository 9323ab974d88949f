"""PSENet: FPNF neck, PSEHead, and PSEPostprocessor's progressive scale expansion."""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np
import pytest
import torch

from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.models.detectors import SingleStageTextDetector
from ocrserve.mmocr.pipelines.postprocess import build_postprocessor
from ocrserve.mmocr.pipelines.postprocess.region_growing import contour_expand


def queue_contour_expand(mask: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """mmcv's C++ loop as it behaves: one FIFO flood of the first map (up, down, left, right)."""
    h, w = labels.shape
    out = labels.astype(np.int32).copy()
    queue = deque(zip(*np.nonzero(out)))
    while queue:
        y, x = queue.popleft()
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ny, nx = y + dy, x + dx
            if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and out[ny, nx] == 0:
                out[ny, nx] = out[y, x]
                queue.append((ny, nx))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_contour_expand_equals_the_queue(seed: int) -> None:
    rng = np.random.default_rng(seed)
    text = (rng.random((40, 50)) < 0.7).astype(np.uint8)
    kernel = ((rng.random((40, 50)) < 0.08) & text.astype(bool)).astype(np.uint8)
    _, labels = cv2.connectedComponents(kernel, connectivity=4)
    masks = np.stack([text, kernel, kernel])
    assert np.array_equal(contour_expand(masks, labels), queue_contour_expand(text, labels))


def test_contour_expand_drops_small_kernels() -> None:
    text = np.ones((5, 9), np.uint8)
    labels = np.zeros((5, 9), np.int32)
    labels[2, 1] = 1
    labels[2, 6:8] = 2
    out = contour_expand(np.stack([text, text]), labels, min_kernel_area=2)
    assert set(np.unique(out)) == {2}


def psenet_config() -> dict[str, object]:
    return {
        "type": "PSENet",
        "backbone": {"type": "mmdet.ResNet", "depth": 50, "base_channels": 4, "style": "caffe"},
        "neck": {"type": "FPNF", "in_channels": [16, 32, 64, 128], "out_channels": 256},
        "bbox_head": {
            "type": "PSEHead",
            "in_channels": [256],
            "out_channels": 7,
            "postprocessor": {"type": "PSEPostprocessor", "text_repr_type": "quad"},
        },
    }


def test_psenet_output_names_and_postprocessor() -> None:
    model = build_model(psenet_config())
    assert isinstance(model, SingleStageTextDetector) and model.downsample_ratio == 0.25
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 64, 96)).shape == (1, 7, 16, 24)
    keys = set(model.state_dict())
    assert {"neck.fpn_convs.2.conv.weight", "neck.output_convs.bn.weight"} <= keys
    assert "neck.output_convs.conv.weight" in keys and "bbox_head.out_conv.bias" in keys
    assert model.neck.output_convs.conv.in_channels == 1024  # fixed by MMOCR for concat
    assert model.postprocessor_config()["type"] == "PSEPostprocessor"


def test_pse_postprocessor_grows_kernels_into_text() -> None:
    logits = np.full((3, 40, 60), -5.0, np.float32)
    logits[0, 5:15, 5:45] = 5.0  # text
    logits[1, 7:13, 8:40] = 5.0
    logits[2, 9:11, 10:30] = 5.0  # smallest kernel seeds the instance
    logits[0, 25:35, 5:20] = 5.0  # text without a kernel: no instance
    post = build_postprocessor({"type": "PSEPostprocessor", "text_repr_type": "quad"})
    boundaries = post(logits)
    assert len(boundaries) == 1
    xs, ys = boundaries[0][0:8:2], boundaries[0][1:8:2]
    assert (min(xs), max(xs), min(ys), max(ys)) == (5, 44, 5, 14)  # pixel centres
    assert boundaries[0][-1] == pytest.approx(1 / (1 + np.exp(-5.0)))
