"""Box operations of mmdet 2.x / mmcv 1.x that two-stage detectors need, in PyTorch and NumPy.

- `nms`: mmcv's CPU ``nms`` (``offset=0``): candidates in the order of ``scores.sort(descending)``,
  greedy, IoU computed in float32 exactly as mmcv's C++ loop does (``inter / (area_i + area_j -
  inter)``, strictly greater than the threshold suppresses);
- `batched_nms`: mmcv's ``batched_nms`` (per-class offsets added to the boxes below 10 000 boxes,
  one NMS per class above);
- `delta2bbox`: mmdet's ``DeltaXYWHBBoxCoder.decode`` (``wh_ratio_clip`` 16/1000, clipped to
  the image);
- `AnchorGenerator`: mmdet's ``AnchorGenerator`` (``center_offset`` 0, scale-major order).

Every float is computed with the same float32 operations in the same order as the original, so
that equal inputs give bit-equal outputs: NMS ties and near-threshold boxes then fall the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ocrserve.errors import ConfigError

__all__ = ["AnchorGenerator", "batched_nms", "delta2bbox", "floor_log2_level", "nms"]

#: mmcv's ``batched_nms`` runs one NMS per class from this many boxes on (``split_thr``).
SPLIT_THRESHOLD = 10000


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indexes of the boxes kept, best score first (mmcv ``nms`` with ``offset=0``)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = scores.sort(descending=True).indices.cpu()
    b = boxes.detach().cpu().float().numpy()
    x1, y1, x2, y2 = (np.ascontiguousarray(b[:, k]) for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    thr = np.float32(iou_threshold)
    zero = np.float32(0)
    alive = order.numpy()
    keep = []
    with np.errstate(divide="ignore", invalid="ignore"):
        while alive.size:
            i = alive[0]
            keep.append(i)
            rest = alive[1:]
            w = np.maximum(zero, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
            h = np.maximum(zero, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
            inter = w * h
            overlap = inter / (areas[i] + areas[rest] - inter)
            alive = rest[~(overlap > thr)]
    return torch.as_tensor(np.asarray(keep, dtype=np.int64), device=boxes.device)


def batched_nms(
    boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float
) -> tuple[Tensor, Tensor]:
    """NMS within each ``idxs`` group: ``(kept boxes with their score appended, their indexes)``,
    best score first (mmcv's ``batched_nms``, not class-agnostic)."""
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    boxes_for_nms = boxes + offsets[:, None]
    if boxes_for_nms.shape[0] < SPLIT_THRESHOLD:
        keep = nms(boxes_for_nms, scores, iou_threshold)
        kept_scores = scores[keep]
    else:
        total_mask = scores.new_zeros(scores.size(), dtype=torch.bool)
        scores_after_nms = scores.new_zeros(scores.size())
        for group in torch.unique(idxs):
            mask = (idxs == group).nonzero(as_tuple=False).view(-1)
            kept = nms(boxes_for_nms[mask], scores[mask], iou_threshold)
            total_mask[mask[kept]] = True
            scores_after_nms[mask[kept]] = scores[mask][kept]
        keep = total_mask.nonzero(as_tuple=False).view(-1)
        kept_scores, inds = scores_after_nms[keep].sort(descending=True)
        keep = keep[inds]
    return torch.cat([boxes[keep], kept_scores[:, None]], -1), keep


def delta2bbox(
    rois: Tensor,
    deltas: Tensor,
    means: Sequence[float],
    stds: Sequence[float],
    max_shape: Sequence[int] | None = None,
    wh_ratio_clip: float = 16 / 1000,
) -> Tensor:
    """Apply ``deltas`` (``N x 4k``, one box per class) to ``rois`` (``N x 4``), clipped to
    ``max_shape`` (``(h, w, ...)``): mmdet's ``delta2bbox`` with ``clip_border``."""
    num_bboxes, num_classes = deltas.size(0), deltas.size(1) // 4
    if num_bboxes == 0:
        return deltas
    deltas = deltas.reshape(-1, 4)
    denorm = deltas * deltas.new_tensor(stds).view(1, -1) + deltas.new_tensor(means).view(1, -1)
    dxy, dwh = denorm[:, :2], denorm[:, 2:]
    rois_ = rois.repeat(1, num_classes).reshape(-1, 4)
    pxy = (rois_[:, :2] + rois_[:, 2:]) * 0.5
    pwh = rois_[:, 2:] - rois_[:, :2]
    dxy_wh = pwh * dxy
    max_ratio = float(np.abs(np.log(wh_ratio_clip)))
    dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    bboxes = torch.cat([gxy - (gwh * 0.5), gxy + (gwh * 0.5)], dim=-1)
    if max_shape is not None:
        bboxes[..., 0::2].clamp_(min=0, max=max_shape[1])
        bboxes[..., 1::2].clamp_(min=0, max=max_shape[0])
    return bboxes.reshape(num_bboxes, -1)


class AnchorGenerator:
    """mmdet's ``AnchorGenerator``: per level, ``len(ratios) * len(scales)`` anchors centred on
    every feature-map cell's top-left corner (``center_offset`` 0)."""

    def __init__(
        self,
        strides: Sequence[int],
        ratios: Sequence[float],
        scales: Sequence[float] | None = None,
        base_sizes: Sequence[int] | None = None,
        scale_major: bool = True,
        octave_base_scale: float | None = None,
        scales_per_octave: int | None = None,
        centers: Sequence[tuple[float, float]] | None = None,
        center_offset: float = 0.0,
    ) -> None:
        if scales is None or octave_base_scale is not None or scales_per_octave is not None:
            raise ConfigError("AnchorGenerator: only explicit `scales` are supported")
        if centers is not None or center_offset != 0.0 or not scale_major:
            raise ConfigError(
                "AnchorGenerator: centers, center_offset and scale_major=False are not supported"
            )
        self.strides = [int(s) for s in strides]
        sizes = list(base_sizes) if base_sizes is not None else self.strides
        ratios_t, scales_t = torch.Tensor(list(ratios)), torch.Tensor(list(scales))
        self.base_anchors = [self._base(int(size), scales_t, ratios_t) for size in sizes]

    @property
    def num_base_anchors(self) -> int:
        return int(self.base_anchors[0].shape[0])

    @staticmethod
    def _base(size: int, scales: Tensor, ratios: Tensor) -> Tensor:
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        ws = (size * w_ratios[:, None] * scales[None, :]).view(-1)
        hs = (size * h_ratios[:, None] * scales[None, :]).view(-1)
        centre = 0.0 * size
        return torch.stack(
            [centre - 0.5 * ws, centre - 0.5 * hs, centre + 0.5 * ws, centre + 0.5 * hs], dim=-1
        )

    def grid_anchors(self, level: int, height: int, width: int, device: torch.device) -> Tensor:
        """All anchors of one level, ``(H * W * A) x 4``, in (y, x, anchor) order."""
        stride = self.strides[level]
        shift_x = torch.arange(0, width, device=device).to(torch.float32) * stride
        shift_y = torch.arange(0, height, device=device).to(torch.float32) * stride
        xx = shift_x.repeat(shift_y.size(0))
        yy = shift_y.view(-1, 1).repeat(1, shift_x.size(0)).view(-1)
        shifts = torch.stack([xx, yy, xx, yy], dim=-1)
        base = self.base_anchors[level].to(device)
        return (base[None, :, :] + shifts[:, None, :]).view(-1, 4)


def floor_log2_level(scale: Tensor, finest_scale: float, num_levels: int) -> Tensor:
    """mmdet's ``SingleRoIExtractor.map_roi_levels`` from ``sqrt(w * h)``: the FPN level of
    each RoI, ``floor(log2(scale / finest_scale + 1e-6))`` clamped to ``0..num_levels-1``."""
    levels = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return levels.clamp(min=0, max=num_levels - 1).long()
