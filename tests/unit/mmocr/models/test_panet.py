"""PANet: FPEM_FFM neck, PANHead and PANPostprocessor's pixel aggregation."""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np
import pytest
import torch

from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.models.detectors import SingleStageTextDetector
from ocrserve.mmocr.pipelines.postprocess import build_postprocessor
from ocrserve.mmocr.pipelines.postprocess.region_growing import pixel_group


def queue_pixel_group(score, mask, emb, labels, contour, num, thr):  # type: ignore[no-untyped-def]
    """mmcv's C++ ``pixel_group`` loop (left, right, up, down), in float32 like the op."""
    h, w = labels.shape
    d = emb.shape[2]
    means = np.zeros((num, d), np.float32)
    for lab in range(1, num):
        pts = emb[labels == lab]
        acc = np.zeros(d, np.float32)
        for p in pts:
            acc = (acc + p).astype(np.float32)
        means[lab] = acc / np.float32(len(pts))
    out = labels.astype(np.int32).copy()
    queue = deque((y, x) for y, x in zip(*np.nonzero((contour > 0) & (labels > 0))))
    thr2 = np.float32(thr) * np.float32(thr)
    while queue:
        y, x = queue.popleft()
        lab = out[y, x]
        for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            ny, nx = y + dy, x + dx
            if not (0 <= ny < h and 0 <= nx < w) or not mask[ny, nx] or out[ny, nx] > 0:
                continue
            dis = np.float32(0)
            for i in range(d):
                diff = float(np.float32(means[lab, i] - emb[ny, nx, i]))
                dis = np.float32(float(dis) + diff * diff)
            if dis < thr2:
                out[ny, nx] = lab
                queue.append((ny, nx))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_pixel_group_equals_the_queue(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((30, 40)) < 0.8
    kernel = ((rng.random((30, 40)) < 0.1) & mask).astype(np.uint8)
    num, labels = cv2.connectedComponents(kernel, connectivity=4)
    contours, _ = cv2.findContours(kernel * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    contour = np.zeros_like(kernel)
    cv2.drawContours(contour, contours, -1, 255)
    emb = rng.normal(0, 0.4, (30, 40, 4)).astype(np.float32)
    score = rng.random((30, 40)).astype(np.float32)
    groups = pixel_group(score, mask, emb, labels, contour, num, 0.85)
    want = queue_pixel_group(score, mask, emb, labels, contour, num, 0.85)
    assert len(groups) == num and groups[0] == [0.0, 0.0]
    for lab in range(1, num):
        ys, xs = np.nonzero(want == lab)
        assert groups[lab][1] == len(xs)
        assert groups[lab][2::2] == xs.tolist() and groups[lab][3::2] == ys.tolist()
        assert groups[lab][0] == pytest.approx(float(score[want == lab].mean()), rel=1e-5)


def panet_config() -> dict[str, object]:
    return {
        "type": "PANet",
        "backbone": {"type": "mmdet.ResNet", "depth": 18, "base_channels": 4, "style": "caffe"},
        "neck": {"type": "FPEM_FFM", "in_channels": [4, 8, 16, 32], "conv_out": 8},
        "bbox_head": {"type": "PANHead", "in_channels": [8, 8, 8, 8], "out_channels": 6},
    }


def test_panet_output_and_names() -> None:
    model = build_model(panet_config())
    assert isinstance(model, SingleStageTextDetector) and model.downsample_ratio == 0.25
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 64, 96)).shape == (1, 6, 16, 24)
    keys = set(model.state_dict())
    assert {"neck.reduce_conv_c5.1.running_var", "neck.fpems.1.down_add3.bn.weight"} <= keys
    assert "neck.fpems.0.up_add1.depthwise_conv.weight" in keys
    assert model.postprocessor_config() == {"type": "PANPostprocessor", "text_repr_type": "poly"}


def test_pan_postprocessor_aggregates_similar_pixels() -> None:
    preds = np.full((6, 30, 50), -5.0, np.float32)
    preds[0, 5:15, 5:40] = 5.0
    preds[1, 8:12, 10:30] = 5.0
    preds[2:, :, 32:] = 3.0  # right part: far in the similarity space, not joined
    post = build_postprocessor({"type": "PANPostprocessor", "text_repr_type": "quad"})
    boundaries = post(preds)
    assert len(boundaries) == 1
    xs, ys = boundaries[0][0:8:2], boundaries[0][1:8:2]
    assert (min(xs), max(xs), min(ys), max(ys)) == (5, 31, 5, 14)
