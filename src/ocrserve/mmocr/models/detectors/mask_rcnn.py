"""MMOCR 0.x's ``OCRMaskRCNN``: mmdet 2.x's ``MaskRCNN`` whose masks become text boundaries.

``mmdet.ResNet`` -> ``mmdet.FPN`` (P6 by max pooling) -> `RPNHead` proposals -> `StandardRoIHead`
(boxes, then a 28 x 28 mask per detection). The network needs each image's meta
(``img_shape`` to clip boxes, ``scale_factor`` to map them to the original image, ``ori_shape``
to paste masks), so it is called as ``model(img, img_metas)``. Its output stays tensors with a
batch axis, detections padded to the most in the batch:

``(dets B x K x 5, labels B x K, mask probabilities B x K x 28 x 28 of each detection's class,
paste boxes B x K x 4, counts B, ori_shape B x 2)``

with boxes in original-image pixels. ``MaskRCNNPostprocessor`` pastes the masks (mmdet's
``_do_paste_mask``), thresholds them and turns class 0's into boundaries (MMOCR's
``seg2boundary``), already in the original image's pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import BACKBONES, HEADS, MODELS, NECKS
from ocrserve.mmocr.models.heads.roi_head import StandardRoIHead
from ocrserve.mmocr.models.heads.rpn_head import RPNHead

__all__ = ["OCRMaskRCNN"]


@MODELS.register("OCRMaskRCNN", ignore=("train_cfg", "show_score"))
class OCRMaskRCNN(nn.Module):
    """Two-stage text detector: ``forward(img, img_metas)`` -> padded detections and masks."""

    task: ClassVar[str] = "textdet"
    #: MMOCR's OCRMaskRCNN result is ``{"boundary_result": [...]}`` only.
    result_has_filename: ClassVar[bool] = False
    channels_last: ClassVar[bool] = False
    #: The predictor passes each sample's meta to `forward`.
    needs_img_metas: ClassVar[bool] = True
    #: Boundaries come out in the original image's pixels (no rescaling after post-processing).
    boundaries_in_original_pixels: ClassVar[bool] = True

    def __init__(
        self,
        backbone: Mapping[str, Any],
        rpn_head: Mapping[str, Any],
        roi_head: Mapping[str, Any],
        test_cfg: Mapping[str, Any],
        neck: Mapping[str, Any] | None = None,
        text_repr_type: str = "quad",
    ) -> None:
        super().__init__()
        if text_repr_type not in ("quad", "poly"):
            raise ConfigError(
                f"OCRMaskRCNN: text_repr_type must be 'quad' or 'poly', got {text_repr_type!r}"
            )
        self.text_repr_type = text_repr_type
        self.backbone = BACKBONES.build(backbone)
        if neck is not None:
            self.neck = NECKS.build(neck)
        rpn = HEADS.build(rpn_head, test_cfg=dict(test_cfg.get("rpn") or {}))
        roi = HEADS.build(roi_head, test_cfg=dict(test_cfg.get("rcnn") or {}))
        if not isinstance(rpn, RPNHead) or not isinstance(roi, StandardRoIHead):
            raise ConfigError("OCRMaskRCNN needs an RPNHead and a StandardRoIHead")
        self.rpn_head: RPNHead = rpn
        self.roi_head: StandardRoIHead = roi

    @property
    def downsample_ratio(self) -> float:
        return 1.0

    def postprocessor_config(self) -> dict[str, Any]:
        return {
            "type": "MaskRCNNPostprocessor",
            "text_repr_type": self.text_repr_type,
            "mask_thr_binary": self.roi_head.mask_thr_binary,
        }

    def extract_feat(self, img: Tensor) -> tuple[Tensor, ...]:
        x = self.backbone(img)
        return tuple(self.neck(x) if hasattr(self, "neck") else x)

    def forward(self, img: Tensor, img_metas: Sequence[Mapping[str, Any]]) -> tuple[Tensor, ...]:
        feats = self.extract_feat(img)
        scores, deltas = self.rpn_head(feats)
        per_image = []
        for b, meta in enumerate(img_metas):
            level_feats = [f[b : b + 1] for f in feats]
            proposals = self.rpn_head.proposals(
                [s[b] for s in scores], [d[b] for d in deltas], meta["img_shape"]
            )
            scale = scale_factor_of(meta).to(img.device)
            _, _, dets, labels = self.roi_head.detect(
                level_feats, proposals, meta["img_shape"], scale
            )
            if dets.size(0) == 0:
                probs = dets.new_zeros((0, *self._mask_size()))
                paste = dets.new_zeros((0, 4))
            else:
                logits = self.roi_head.masks(level_feats, dets, scale)
                rows = torch.arange(dets.size(0), device=dets.device)
                channels = labels if logits.size(1) > 1 else torch.zeros_like(labels)
                probs = logits.sigmoid()[rows, channels]  # class-agnostic heads have one
                paste = (dets[:, :4] * scale) / scale
            per_image.append((dets, labels, probs, paste, meta["ori_shape"]))
        return _padded(per_image)

    def _mask_size(self) -> tuple[int, int]:
        h, w = self.roi_head.mask_roi_extractor.output_size
        return 2 * h, 2 * w


def scale_factor_of(meta: Mapping[str, Any]) -> Tensor:
    """The meta's ``scale_factor`` as mmdet reads it: 4 float32 values (w, h, w, h)."""
    factor = np.asarray(meta.get("scale_factor", 1.0), dtype=np.float32)
    return torch.from_numpy(np.broadcast_to(factor, (4,)).copy())


def _padded(per_image: list[tuple[Tensor, Tensor, Tensor, Tensor, Any]]) -> tuple[Tensor, ...]:
    """Stack per-image detections, padding to the largest count."""
    most = max(d.size(0) for d, *_ in per_image)
    batch = len(per_image)
    mask_h, mask_w = per_image[0][2].shape[-2:]
    dets = torch.zeros(batch, most, 5)
    labels = torch.full((batch, most), -1, dtype=torch.long)
    probs = torch.zeros(batch, most, mask_h, mask_w)
    paste = torch.zeros(batch, most, 4)
    counts = torch.zeros(batch, dtype=torch.long)
    shapes = torch.zeros(batch, 2, dtype=torch.long)
    for b, (d, lab, p, box, ori_shape) in enumerate(per_image):
        n = d.size(0)
        dets[b, :n], labels[b, :n], probs[b, :n], paste[b, :n] = (
            d.cpu(),
            lab.cpu(),
            p.cpu(),
            box.cpu(),
        )
        counts[b] = n
        shapes[b] = torch.tensor([int(ori_shape[0]), int(ori_shape[1])])
    return dets, labels, probs, paste, counts, shapes
