"""mmdet 2.x's ``RPNHead`` (registered as ``RPNHead``): the proposal stage of Mask R-CNN.

A shared 3x3 conv (ReLU) per FPN level, then 1x1 convs to one objectness logit (sigmoid) and
four box deltas per anchor. `RPNHead.proposals` is mmdet 2.28's ``simple_test_rpn`` for one image:
per level the ``nms_pre`` best anchors (``scores.sort(descending=True)``), decoded with
``DeltaXYWHBBoxCoder`` and clipped to the network input, boxes of ``min_bbox_size`` or less
dropped, then one NMS with the level as the class (`batched_nms`), at most ``max_per_img``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import HEADS
from ocrserve.mmocr.models.ops_boxes import AnchorGenerator, batched_nms, delta2bbox

__all__ = ["RPNHead", "build_anchor_generator", "check_delta_coder"]


def build_anchor_generator(cfg: Mapping[str, Any]) -> AnchorGenerator:
    """An ``AnchorGenerator`` config -> `AnchorGenerator` (the only type supported)."""
    kwargs = dict(cfg)
    if kwargs.pop("type", None) != "AnchorGenerator":
        raise ConfigError(
            f"RPNHead: anchor_generator type {cfg.get('type')!r} is not supported "
            "(supported: AnchorGenerator)"
        )
    return AnchorGenerator(**kwargs)


def check_delta_coder(cfg: Mapping[str, Any] | None) -> tuple[list[float], list[float]]:
    """A ``DeltaXYWHBBoxCoder`` config -> its (means, stds); other coders raise `ConfigError`."""
    cfg = dict(cfg or {"type": "DeltaXYWHBBoxCoder"})
    if cfg.get("type") != "DeltaXYWHBBoxCoder":
        raise ConfigError(
            f"bbox_coder type {cfg.get('type')!r} is not supported (supported: DeltaXYWHBBoxCoder)"
        )
    if cfg.get("add_ctr_clamp") or cfg.get("clip_border", True) is not True:
        raise ConfigError(
            "DeltaXYWHBBoxCoder: add_ctr_clamp and clip_border=False are not supported"
        )
    return (
        [float(m) for m in cfg.get("target_means", (0.0, 0.0, 0.0, 0.0))],
        [float(s) for s in cfg.get("target_stds", (1.0, 1.0, 1.0, 1.0))],
    )


@HEADS.register("RPNHead", ignore=("loss_cls", "loss_bbox", "train_cfg"))
class RPNHead(nn.Module):
    """``forward(feats) -> (objectness logits per level, box deltas per level)``."""

    def __init__(
        self,
        in_channels: int,
        anchor_generator: Mapping[str, Any],
        feat_channels: int = 256,
        bbox_coder: Mapping[str, Any] | None = None,
        num_convs: int = 1,
        reg_decoded_bbox: bool = False,
        test_cfg: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if num_convs != 1 or reg_decoded_bbox:
            raise ConfigError("RPNHead: only num_convs=1 without reg_decoded_bbox is supported")
        self.anchor_generator = build_anchor_generator(anchor_generator)
        self.means, self.stds = check_delta_coder(bbox_coder)
        anchors = self.anchor_generator.num_base_anchors
        self.rpn_conv = nn.Conv2d(in_channels, feat_channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(feat_channels, anchors, 1)
        self.rpn_reg = nn.Conv2d(feat_channels, anchors * 4, 1)
        cfg = dict(test_cfg or {})
        if cfg.get("nms_across_levels"):
            raise ConfigError("RPNHead: nms_across_levels is not supported (mmdet 2.28 ignores it)")
        self.nms_pre = int(cfg.get("nms_pre", -1))
        self.max_per_img = int(cfg.get("max_per_img", cfg.get("nms_post", 1000)))
        self.min_bbox_size = float(cfg.get("min_bbox_size", 0))
        nms: dict[str, Any] = dict(cfg.get("nms") or {"type": "nms", "iou_threshold": 0.7})
        if nms.get("type", "nms") != "nms":
            raise ConfigError(f"RPNHead: nms type {nms.get('type')!r} is not supported (nms)")
        self.iou_threshold = float(nms.get("iou_threshold", nms.get("iou_thr", 0.7)))

    def forward(self, feats: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        scores, deltas = [], []
        for x in feats:
            x = F.relu(self.rpn_conv(x))
            scores.append(self.rpn_cls(x))
            deltas.append(self.rpn_reg(x))
        return scores, deltas

    def proposals(
        self, scores: Sequence[Tensor], deltas: Sequence[Tensor], img_shape: Sequence[int]
    ) -> Tensor:
        """One image's proposals (``scores``/``deltas`` per level, ``A x H x W`` and
        ``4A x H x W``): ``N x 5`` boxes with their objectness, best first."""
        level_scores, level_deltas, level_anchors, level_ids = [], [], [], []
        for level, (score, delta) in enumerate(zip(scores, deltas)):
            height, width = score.shape[-2:]
            probs = score.permute(1, 2, 0).reshape(-1).sigmoid()
            delta = delta.permute(1, 2, 0).reshape(-1, 4)
            anchors = self.anchor_generator.grid_anchors(level, height, width, score.device)
            if 0 < self.nms_pre < probs.shape[0]:
                ranked, rank_inds = probs.sort(descending=True)
                top = rank_inds[: self.nms_pre]
                probs = ranked[: self.nms_pre]
                delta, anchors = delta[top, :], anchors[top, :]
            level_scores.append(probs)
            level_deltas.append(delta)
            level_anchors.append(anchors)
            level_ids.append(probs.new_full((probs.size(0),), level, dtype=torch.long))
        probs = torch.cat(level_scores)
        boxes = delta2bbox(
            torch.cat(level_anchors), torch.cat(level_deltas), self.means, self.stds, img_shape
        )
        ids = torch.cat(level_ids)
        if self.min_bbox_size >= 0:
            w = boxes[:, 2] - boxes[:, 0]
            h = boxes[:, 3] - boxes[:, 1]
            valid = (w > self.min_bbox_size) & (h > self.min_bbox_size)
            if not bool(valid.all()):
                boxes, probs, ids = boxes[valid], probs[valid], ids[valid]
        if boxes.numel() == 0:
            return boxes.new_zeros(0, 5)
        dets, _ = batched_nms(boxes, probs, ids, self.iou_threshold)
        return dets[: self.max_per_img]
