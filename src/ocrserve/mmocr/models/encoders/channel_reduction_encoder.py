"""MMOCR's ``ChannelReductionEncoder`` (RobustScanner): a 1x1 convolution, ``layer``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from ocrserve.mmocr.models.builder import ENCODERS

__all__ = ["ChannelReductionEncoder"]


@ENCODERS.register("ChannelReductionEncoder")
class ChannelReductionEncoder(nn.Module):
    """``in_channels`` -> ``out_channels`` by a 1x1 convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.layer = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, padding=0)

    def forward(self, feat: Tensor, img_metas: Sequence[Mapping[str, Any]] | None = None) -> Tensor:
        return self.layer(feat)
