"""mmdet 2.x's ``StandardRoIHead`` with its box and mask branches, as Mask R-CNN uses them.

- ``SingleRoIExtractor``: each RoI is pooled (`roi_align`) from FPN level
  ``floor(log2(sqrt(w * h) / finest_scale + 1e-6))``, clamped to the levels given;
- ``Shared2FCBBoxHead``: two shared fully connected layers (ReLU), then ``fc_cls``
  (``num_classes + 1`` logits, background last) and ``fc_reg`` (four deltas per class);
- ``FCNMaskHead``: 3x3 convs (ReLU), a stride-2 transposed conv (ReLU), a 1x1 conv to one mask
  logit map per class.

`StandardRoIHead.detect` is mmdet 2.28's ``simple_test_bboxes`` with ``rescale=True`` for one
image: softmax scores, class boxes decoded and clipped to the network input, divided by the
image's ``scale_factor``, then ``multiclass_nms`` (scores over ``score_thr``, `batched_nms` with
the class as the group, at most ``max_per_img``). `StandardRoIHead.masks` runs the mask branch
on the detections mapped back to the network input (``det_bboxes * scale_factor``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import HEADS
from ocrserve.mmocr.models.heads.rpn_head import check_delta_coder
from ocrserve.mmocr.models.layers import ConvModule
from ocrserve.mmocr.models.ops_boxes import batched_nms, delta2bbox, floor_log2_level
from ocrserve.mmocr.models.roi_align import roi_align

__all__ = [
    "FCNMaskHead",
    "Shared2FCBBoxHead",
    "SingleRoIExtractor",
    "StandardRoIHead",
    "multiclass_nms",
]

_TRAINING_KEYS = ("loss_cls", "loss_bbox", "loss_mask", "init_cfg")


def _type(cfg: Mapping[str, Any], expected: str, what: str) -> dict[str, Any]:
    kwargs = dict(cfg)
    if kwargs.pop("type", None) != expected:
        raise ConfigError(f"{what} type {cfg.get('type')!r} is not supported ({expected})")
    for key in _TRAINING_KEYS:
        kwargs.pop(key, None)
    return kwargs


class SingleRoIExtractor(nn.Module):
    """mmdet's ``SingleRoIExtractor`` over ``RoIAlign`` (``aligned=True``, average)."""

    def __init__(
        self,
        roi_layer: Mapping[str, Any],
        out_channels: int,
        featmap_strides: Sequence[int],
        finest_scale: int = 56,
    ) -> None:
        super().__init__()
        layer = _type(roi_layer, "RoIAlign", "roi_layer")
        if "sample_num" in layer:  # mmcv 1.x's deprecated name
            layer["sampling_ratio"] = layer.pop("sample_num")
        if layer.pop("pool_mode", "avg") != "avg" or layer.pop("aligned", True) is not True:
            raise ConfigError("RoIAlign: only pool_mode='avg' with aligned=True is supported")
        layer.pop("use_torchvision", None)
        size = layer.pop("output_size", layer.pop("out_size", 7))
        self.output_size = (size, size) if isinstance(size, int) else tuple(size)
        self.sampling_ratio = int(layer.pop("sampling_ratio", 0))
        if layer:
            raise ConfigError(f"RoIAlign: unknown settings {sorted(layer)}")
        self.out_channels = out_channels
        self.featmap_strides = [int(s) for s in featmap_strides]
        self.finest_scale = finest_scale

    @property
    def num_inputs(self) -> int:
        return len(self.featmap_strides)

    def forward(self, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
        feats = feats[: self.num_inputs]
        out = feats[0].new_zeros(rois.size(0), self.out_channels, *self.output_size)
        scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        levels = floor_log2_level(scale, self.finest_scale, len(feats))
        for i, feat in enumerate(feats):
            inds = (levels == i).nonzero(as_tuple=False).squeeze(1)
            if inds.numel() > 0:
                out[inds] = roi_align(
                    feat, rois[inds], self.output_size, 1 / self.featmap_strides[i],
                    self.sampling_ratio,
                )  # fmt: skip
        return out


class Shared2FCBBoxHead(nn.Module):
    """``forward(roi feats) -> (class logits, box deltas)``."""

    def __init__(
        self,
        in_channels: int = 256,
        fc_out_channels: int = 1024,
        roi_feat_size: int = 7,
        num_classes: int = 80,
        bbox_coder: Mapping[str, Any] | None = None,
        reg_class_agnostic: bool = False,
        with_avg_pool: bool = False,
        reg_decoded_bbox: bool = False,
    ) -> None:
        super().__init__()
        if with_avg_pool or reg_decoded_bbox:
            raise ConfigError(
                "Shared2FCBBoxHead: with_avg_pool and reg_decoded_bbox are not supported"
            )
        self.num_classes = num_classes
        self.reg_class_agnostic = reg_class_agnostic
        self.means, self.stds = check_delta_coder(
            bbox_coder or {"type": "DeltaXYWHBBoxCoder", "target_stds": [0.1, 0.1, 0.2, 0.2]}
        )
        flat = in_channels * roi_feat_size * roi_feat_size
        self.shared_fcs = nn.ModuleList(
            [nn.Linear(flat, fc_out_channels), nn.Linear(fc_out_channels, fc_out_channels)]
        )
        self.fc_cls = nn.Linear(fc_out_channels, num_classes + 1)
        self.fc_reg = nn.Linear(fc_out_channels, 4 if reg_class_agnostic else 4 * num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.flatten(1)
        for fc in self.shared_fcs:
            x = F.relu(fc(x))
        return self.fc_cls(x), self.fc_reg(x)


class FCNMaskHead(nn.Module):
    """``forward(roi feats) -> mask logits`` (``R x num_classes x 2S x 2S``)."""

    def __init__(
        self,
        num_convs: int = 4,
        roi_feat_size: int = 14,
        in_channels: int = 256,
        conv_kernel_size: int = 3,
        conv_out_channels: int = 256,
        num_classes: int = 80,
        class_agnostic: bool = False,
        upsample_cfg: Mapping[str, Any] | None = None,
        conv_cfg: Mapping[str, Any] | None = None,
        norm_cfg: Mapping[str, Any] | None = None,
        predictor_cfg: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        upsample = dict(upsample_cfg or {"type": "deconv", "scale_factor": 2})
        if upsample.get("type") != "deconv" or upsample.get("scale_factor", 2) != 2:
            raise ConfigError("FCNMaskHead: only upsample_cfg type 'deconv' x2 is supported")
        if predictor_cfg is not None and predictor_cfg.get("type", "Conv") != "Conv":
            raise ConfigError("FCNMaskHead: only a Conv predictor is supported")
        self.num_classes = num_classes
        self.class_agnostic = class_agnostic
        pad = (conv_kernel_size - 1) // 2
        self.convs = nn.ModuleList(
            ConvModule(
                in_channels if i == 0 else conv_out_channels, conv_out_channels,
                conv_kernel_size, padding=pad, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
            )
            for i in range(num_convs)
        )  # fmt: skip
        channels = conv_out_channels if num_convs > 0 else in_channels
        self.upsample = nn.ConvTranspose2d(channels, conv_out_channels, 2, stride=2)
        self.conv_logits = nn.Conv2d(conv_out_channels, 1 if class_agnostic else num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = conv(x)
        return self.conv_logits(F.relu(self.upsample(x)))


def multiclass_nms(
    multi_bboxes: Tensor, multi_scores: Tensor, score_thr: float, iou_threshold: float,
    max_num: int = -1,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """mmdet 2.28's ``multiclass_nms``: ``(dets N x 5, labels N)``, background column dropped."""
    num_classes = multi_scores.size(1) - 1
    if multi_bboxes.shape[1] > 4:
        bboxes = multi_bboxes.view(multi_scores.size(0), -1, 4)
    else:
        bboxes = multi_bboxes[:, None].expand(multi_scores.size(0), num_classes, 4)
    scores = multi_scores[:, :-1]
    labels = torch.arange(num_classes, dtype=torch.long, device=scores.device)
    labels = labels.view(1, -1).expand_as(scores)
    bboxes, scores, labels = bboxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)
    inds = (scores > score_thr).nonzero(as_tuple=False).squeeze(1)
    bboxes, scores, labels = bboxes[inds], scores[inds], labels[inds]
    if bboxes.numel() == 0:
        return torch.cat([bboxes, scores[:, None]], -1), labels
    dets, keep = batched_nms(bboxes, scores, labels, iou_threshold)
    if max_num > 0:
        dets, keep = dets[:max_num], keep[:max_num]
    return dets, labels[keep]


@HEADS.register("StandardRoIHead", ignore=("train_cfg", "shared_head"))
class StandardRoIHead(nn.Module):
    """The second stage: boxes from proposals, then masks of the detections."""

    def __init__(
        self,
        bbox_roi_extractor: Mapping[str, Any],
        bbox_head: Mapping[str, Any],
        mask_roi_extractor: Mapping[str, Any] | None = None,
        mask_head: Mapping[str, Any] | None = None,
        test_cfg: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if mask_head is None or mask_roi_extractor is None:
            raise ConfigError(
                "StandardRoIHead: a mask_head and its mask_roi_extractor are "
                "required (text boundaries come from the masks)"
            )
        extractor = "SingleRoIExtractor"
        self.bbox_roi_extractor = SingleRoIExtractor(**_type(bbox_roi_extractor, extractor, "RoI"))
        self.bbox_head = Shared2FCBBoxHead(**_type(bbox_head, "Shared2FCBBoxHead", "bbox_head"))
        self.mask_roi_extractor = SingleRoIExtractor(**_type(mask_roi_extractor, extractor, "RoI"))
        self.mask_head = FCNMaskHead(**_type(mask_head, "FCNMaskHead", "mask_head"))
        cfg = dict(test_cfg or {})
        nms: dict[str, Any] = dict(cfg.get("nms") or {"type": "nms", "iou_threshold": 0.5})
        if nms.get("type", "nms") != "nms":
            raise ConfigError(f"StandardRoIHead: nms type {nms.get('type')!r} is not supported")
        self.iou_threshold = float(nms.get("iou_threshold", nms.get("iou_thr", 0.5)))
        self.score_thr = float(cfg.get("score_thr", 0.05))
        self.max_per_img = int(cfg.get("max_per_img", 100))
        self.mask_thr_binary = float(cfg.get("mask_thr_binary", 0.5))

    def detect(
        self,
        feats: Sequence[Tensor],
        proposals: Tensor,
        img_shape: Sequence[int],
        scale_factor: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One image: ``(class logits, box deltas, dets N x 5 in original pixels, labels)``."""
        rois = torch.cat([proposals.new_zeros(proposals.size(0), 1), proposals[:, :4]], dim=1)
        cls_score, bbox_pred = self.bbox_head(self.bbox_roi_extractor(feats, rois))
        dets, labels = self.boxes_from(rois, cls_score, bbox_pred, img_shape, scale_factor)
        return cls_score, bbox_pred, dets, labels

    def boxes_from(
        self,
        rois: Tensor,
        cls_score: Tensor,
        bbox_pred: Tensor,
        img_shape: Sequence[int],
        scale_factor: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """mmdet's ``BBoxHead.get_bboxes`` with ``rescale=True``, then `multiclass_nms`."""
        scores = F.softmax(cls_score, dim=-1)
        head = self.bbox_head
        bboxes = delta2bbox(rois[:, 1:], bbox_pred, head.means, head.stds, img_shape)
        scale_factor = scale_factor.to(bboxes)
        if bboxes.size(0) > 0:
            bboxes = (bboxes.view(bboxes.size(0), -1, 4) / scale_factor).view(bboxes.size(0), -1)
        return multiclass_nms(bboxes, scores, self.score_thr, self.iou_threshold, self.max_per_img)

    def masks(self, feats: Sequence[Tensor], dets: Tensor, scale_factor: Tensor) -> Tensor:
        """Mask logits of the detections (``N x num_classes x 28 x 28``)."""
        boxes = dets[:, :4] * scale_factor.to(dets)
        rois = torch.cat([boxes.new_zeros(boxes.size(0), 1), boxes], dim=1)
        return self.mask_head(self.mask_roi_extractor(feats, rois))
