"""MMOCR's ``SegHead``: per-pixel character classes of the segmentation recognizer (SegOCR).

``seg_conv`` (3x3 ConvModule, BN, ReLU) and ``pred_conv`` (1x1 to ``num_classes``) on the neck's
last map, then ``F.interpolate(**upsample_param)`` if given (``scale_factor=2.0``, nearest, in
MMOCR's configs: back to the input resolution). The output is raw logits ``N x classes x H x W``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import HEADS
from ocrserve.mmocr.models.layers import ConvModule

__all__ = ["SegHead"]


@HEADS.register("SegHead")
class SegHead(nn.Module):
    """``num_classes`` comes from the label convertor (`SegRecognizer` passes it)."""

    def __init__(
        self,
        in_channels: int = 128,
        num_classes: int = 37,
        upsample_param: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if upsample_param is not None and not isinstance(upsample_param, Mapping):
            raise ConfigError(f"SegHead: upsample_param must be a dict, got {upsample_param!r}")
        self.upsample_param = dict(upsample_param) if upsample_param is not None else None
        self.seg_conv = ConvModule(
            in_channels, in_channels, 3, stride=1, padding=1, norm_cfg={"type": "BN"}
        )
        self.pred_conv = nn.Conv2d(in_channels, num_classes, kernel_size=1, stride=1, padding=0)

    def forward(self, out_neck: Sequence[Tensor]) -> Tensor:
        seg_map = self.pred_conv(self.seg_conv(out_neck[-1]))
        if self.upsample_param is not None:
            seg_map = F.interpolate(seg_map, **self.upsample_param)
        return seg_map
