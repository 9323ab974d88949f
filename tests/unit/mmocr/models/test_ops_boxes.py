"""The box operations Mask R-CNN needs, against plain transcriptions of mmcv's CPU kernels
(float32 scalar arithmetic, one box and one sample at a time)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ocrserve.mmocr.models.ops_boxes import AnchorGenerator, batched_nms, delta2bbox, nms
from ocrserve.mmocr.models.roi_align import roi_align

F32 = np.float32


def _random_boxes(rng: np.random.Generator, n: int, spread: float = 60.0) -> torch.Tensor:
    xy = rng.uniform(0, spread, (n, 2)).astype(F32)
    wh = rng.uniform(1, 30, (n, 2)).astype(F32)
    return torch.from_numpy(np.concatenate([xy, xy + wh], axis=1))


def _mmcv_nms(boxes: torch.Tensor, scores: torch.Tensor, thr: float) -> list[int]:
    """mmcv's nms_cpu loop, scalar by scalar."""
    order = scores.sort(descending=True).indices.tolist()
    b = boxes.numpy()
    area = [F32(F32(x2 - x1) * F32(y2 - y1)) for x1, y1, x2, y2 in b]
    keep_flag = [True] * len(order)
    for a, i in enumerate(order):
        if not keep_flag[a]:
            continue
        for c in range(a + 1, len(order)):
            j = order[c]
            if not keep_flag[c]:
                continue
            w = max(F32(0), F32(min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0])))
            h = max(F32(0), F32(min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1])))
            inter = F32(w * h)
            if F32(inter / F32(F32(area[i] + area[j]) - inter)) > F32(thr):
                keep_flag[c] = False
    return [i for a, i in enumerate(order) if keep_flag[a]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nms_is_mmcvs_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, 120)
    boxes[60:70] = boxes[0:10]  # duplicates: IoU 1
    scores = torch.from_numpy(rng.choice(np.linspace(0, 1, 25, dtype=F32), 120))  # many ties
    assert nms(boxes, scores, 0.5).tolist() == _mmcv_nms(boxes, scores, 0.5)
    assert nms(boxes[:0], scores[:0], 0.5).numel() == 0


def test_batched_nms_keeps_classes_apart_and_splits_alike() -> None:
    rng = np.random.default_rng(3)
    boxes = _random_boxes(rng, 40)
    scores = torch.from_numpy(rng.uniform(0, 1, 40).astype(F32))
    both = torch.cat([boxes, boxes])
    labels = torch.cat([torch.zeros(40, dtype=torch.long), torch.ones(40, dtype=torch.long)])
    dets, keep = batched_nms(both, torch.cat([scores, scores]), labels, 0.5)
    alone = nms(boxes, scores, 0.5)
    assert sorted(keep.tolist()) == sorted(alone.tolist() + (alone + 40).tolist())
    assert dets[:, 4].tolist() == sorted(dets[:, 4].tolist(), reverse=True)
    # Past 10 000 boxes mmcv runs one NMS per class: the same boxes survive.
    many = _random_boxes(rng, 10200, spread=20.0)
    many_scores = torch.from_numpy(rng.uniform(0, 1, 10200).astype(F32))
    many_labels = torch.from_numpy(rng.integers(0, 3, 10200))
    _, split = batched_nms(many, many_scores, many_labels, 0.5)
    expected = []
    for c in range(3):
        idx = (many_labels == c).nonzero().view(-1)
        expected += idx[nms(many[idx], many_scores[idx], 0.5)].tolist()
    assert sorted(split.tolist()) == sorted(expected)


def _mmcv_roi_align(feat: np.ndarray, roi: np.ndarray, out: int, scale: float) -> np.ndarray:
    """mmcv's ROIAlignForward (aligned, average, sampling_ratio 0) for one RoI, scalar by scalar."""
    channels, height, width = feat.shape
    sw, sh = F32(F32(roi[1] * F32(scale)) - F32(0.5)), F32(F32(roi[2] * F32(scale)) - F32(0.5))
    ew, eh = F32(F32(roi[3] * F32(scale)) - F32(0.5)), F32(F32(roi[4] * F32(scale)) - F32(0.5))
    rw, rh = F32(ew - sw), F32(eh - sh)
    bh, bw = F32(rh / F32(out)), F32(rw / F32(out))
    gh, gw = int(np.ceil(bh)), int(np.ceil(bw))
    result = np.zeros((channels, out, out), dtype=F32)
    for ph in range(out):
        for pw in range(out):
            total = np.zeros(channels, dtype=F32)
            for iy in range(gh):
                y = F32(F32(sh + F32(F32(ph) * bh)) + F32(F32(F32(iy + 0.5) * bh) / F32(gh)))
                for ix in range(gw):
                    x = F32(F32(sw + F32(F32(pw) * bw)) + F32(F32(F32(ix + 0.5) * bw) / F32(gw)))
                    if y < -1.0 or y > height or x < -1.0 or x > width:
                        continue
                    yy, xx = max(y, F32(0)), max(x, F32(0))
                    yl, xl = int(yy), int(xx)
                    if yl >= height - 1:
                        yl = yh = height - 1
                        yy = F32(yl)
                    else:
                        yh = yl + 1
                    if xl >= width - 1:
                        xl = xh = width - 1
                        xx = F32(xl)
                    else:
                        xh = xl + 1
                    ly, lx = F32(yy - F32(yl)), F32(xx - F32(xl))
                    hy, hx = F32(F32(1) - ly), F32(F32(1) - lx)
                    val = feat[:, yl, xl] * F32(hy * hx) + feat[:, yl, xh] * F32(hy * lx)
                    val = val + feat[:, yh, xl] * F32(ly * hx)
                    total = total + (val + feat[:, yh, xh] * F32(ly * lx))
            result[:, ph, pw] = total / F32(max(gh * gw, 1))
    return result


def test_roi_align_is_mmcvs_kernel() -> None:
    rng = np.random.default_rng(4)
    feat = rng.normal(size=(1, 3, 11, 13)).astype(F32)
    rois = np.array(
        [
            [0, 3.3, 4.1, 30.7, 22.9],  # inside
            [0, -9.0, -5.0, 12.0, 60.0],  # past the top-left and bottom borders
            [0, 40.2, 2.0, 52.0, 43.9],  # past the right border
            [0, 8.0, 8.0, 8.0, 8.0],  # empty: zeros
            [0, 1.0, 2.0, 80.0, 7.0],  # wide: several samples per bin
        ],
        dtype=F32,
    )
    ours = roi_align(torch.from_numpy(feat), torch.from_numpy(rois), 7, 0.25).numpy()
    for k, roi in enumerate(rois):
        np.testing.assert_array_equal(ours[k], _mmcv_roi_align(feat[0], roi, 7, 0.25))


def test_anchors_and_deltas() -> None:
    gen = AnchorGenerator(strides=[4, 8], ratios=[1.0, 4.0], scales=[4])
    assert gen.base_anchors[0][0].tolist() == [-8.0, -8.0, 8.0, 8.0]
    assert gen.base_anchors[1][1].tolist() == [-8.0, -32.0, 8.0, 32.0]  # ratio is h / w
    grid = gen.grid_anchors(0, 2, 3, torch.device("cpu"))
    assert grid.shape == (2 * 3 * 2, 4)
    assert grid[2].tolist() == [-4.0, -8.0, 12.0, 8.0]  # (y 0, x 1, anchor 0)
    rois = torch.tensor([[10.0, 10.0, 30.0, 50.0]])
    means, stds = [0.0] * 4, [1.0] * 4
    assert delta2bbox(rois, torch.zeros(1, 4), means, stds).tolist() == rois.tolist()
    moved = delta2bbox(rois, torch.tensor([[0.5, 0.0, 0.0, 10.0]]), means, stds, (45, 100, 3))
    assert moved[0, 0].item() == 20.0 and moved[0, 2].item() == 40.0
    assert moved[0, 1].item() == 0.0 and moved[0, 3].item() == 45.0  # clipped
