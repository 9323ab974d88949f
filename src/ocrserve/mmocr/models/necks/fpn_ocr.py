"""MMOCR's ``FPNOCR``: the top-down feature pyramid of the segmentation recognizer (SegOCR).

Every level gets a 1x1 ``lateral_convs`` ConvModule (BN, ReLU) to ``out_channels``. From the
coarsest level down, the running map is upsampled x2 (bilinear, corners not aligned), joined
with the next finer lateral map, and fused by ``smooth_convs_1x1`` (2C -> C) then
``smooth_convs_3x3``. Returns the finest fused map as a 1-tuple (``last_stage_only``) or every
fused map, coarse to fine.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import NECKS
from ocrserve.mmocr.models.layers import ConvModule

__all__ = ["FPNOCR"]

_BN = {"type": "BN"}


@NECKS.register("FPNOCR")
class FPNOCR(nn.Module):
    """FPN-like neck for segmentation-based recognition (``in_channels`` per backbone level)."""

    def __init__(
        self, in_channels: Sequence[int], out_channels: int, last_stage_only: bool = True
    ) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(self.in_channels)
        self.last_stage_only = last_stage_only
        self.lateral_convs = nn.ModuleList(
            ConvModule(c, out_channels, 1, norm_cfg=_BN) for c in self.in_channels
        )
        self.smooth_convs_1x1 = nn.ModuleList(
            ConvModule(out_channels * 2, out_channels, 1, norm_cfg=_BN)
            for _ in range(self.num_ins - 1)
        )
        self.smooth_convs_3x3 = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=_BN)
            for _ in range(self.num_ins - 1)
        )

    def forward(self, inputs: Sequence[Tensor]) -> tuple[Tensor, ...]:
        laterals = [conv(inputs[i]) for i, conv in enumerate(self.lateral_convs)]
        outs: list[Tensor] = []
        for i in range(len(self.smooth_convs_3x3), 0, -1):
            previous = outs[-1] if outs else laterals[-1]
            up = F.interpolate(previous, scale_factor=2, mode="bilinear")
            fused = self.smooth_convs_1x1[i - 1](torch.cat((up, laterals[i - 1]), dim=1))
            outs.append(self.smooth_convs_3x3[i - 1](fused))
        return tuple(outs[-1:]) if self.last_stage_only else tuple(outs)
