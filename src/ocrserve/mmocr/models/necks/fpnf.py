"""MMOCR's ``FPNF`` neck (PSENet): an FPN whose levels are upsampled and fused into one map.

Lateral ``ConvModule`` 1x1 convs (BN, ReLU) per level; top-down, each level adds the nearest
upsampled level above and goes through its ``fpn_convs`` 3x3 ConvModule; all levels are then
upsampled to the first and concatenated (``fusion_type="concat"``) or summed (``"add"``), and
``output_convs`` (3x3, BN, ReLU) gives ``out_channels``. Like MMOCR, the fused width is fixed:
1024 channels for concat, 256 for add, whatever ``out_channels`` says.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import NECKS
from ocrserve.mmocr.models.layers import ConvModule

__all__ = ["FPNF"]

_FUSED_CHANNELS = {"concat": 1024, "add": 256}


@NECKS.register("FPNF")
class FPNF(nn.Module):
    """Fuses C2-C5 into one ``out_channels`` map at the resolution of C2."""

    def __init__(
        self,
        in_channels: Sequence[int] = (256, 512, 1024, 2048),
        out_channels: int = 256,
        fusion_type: str = "concat",
    ) -> None:
        super().__init__()
        if fusion_type not in _FUSED_CHANNELS:
            raise ConfigError(f"FPNF: fusion_type must be 'concat' or 'add', got {fusion_type!r}")
        bn, relu = {"type": "BN"}, {"type": "ReLU"}
        self.in_channels = list(in_channels)
        self.fusion_type = fusion_type
        self.lateral_convs = nn.ModuleList(
            ConvModule(c, out_channels, 1, norm_cfg=bn, act_cfg=relu, inplace=False)
            for c in self.in_channels
        )
        self.fpn_convs = nn.ModuleList(
            ConvModule(
                out_channels, out_channels, 3, padding=1, norm_cfg=bn, act_cfg=relu, inplace=False
            )
            for _ in self.in_channels[:-1]
        )
        self.output_convs = ConvModule(
            _FUSED_CHANNELS[fusion_type],
            out_channels,
            3,
            padding=1,
            norm_cfg=bn,
            act_cfg=relu,
            inplace=False,
        )

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"FPNF expects {len(self.in_channels)} inputs, got {len(inputs)}")
        laterals = [conv(inputs[i]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):
            up = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], mode="nearest")
            laterals[i - 1] = self.fpn_convs[i - 1](laterals[i - 1] + up)
        size = laterals[0].shape[2:]
        for i in range(1, len(laterals)):
            laterals[i] = F.interpolate(laterals[i], size=size, mode="nearest")
        if self.fusion_type == "concat":
            out = torch.cat(laterals, 1)
        else:
            out = laterals[0]
            for lateral in laterals[1:]:
                out = out + lateral
        return self.output_convs(out)
