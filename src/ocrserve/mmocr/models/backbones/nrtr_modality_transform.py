"""MMOCR's ``NRTRModalityTransform``: NRTR's two strided convolutions and a linear projection.

``conv_1`` (3x3, stride 2) ReLU ``bn_1``, ``conv_2`` ReLU ``bn_2`` (activation before norm, as
MMOCR), then each column's ``H/4 x 64`` values (512 for a 32-pixel-high input) go through
``linear``; output ``N x 512 x 1 x W/4``.
"""

from __future__ import annotations

from torch import Tensor, nn

from ocrserve.mmocr.models.builder import BACKBONES

__all__ = ["NRTRModalityTransform"]


@BACKBONES.register("NRTRModalityTransform")
class NRTRModalityTransform(nn.Module):
    """The modality-transform block of NRTR (https://arxiv.org/abs/1806.00926)."""

    def __init__(self, input_channels: int = 3) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(input_channels, 32, kernel_size=3, stride=2, padding=1)
        self.relu_1 = nn.ReLU(True)
        self.bn_1 = nn.BatchNorm2d(32)
        self.conv_2 = nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1)
        self.relu_2 = nn.ReLU(True)
        self.bn_2 = nn.BatchNorm2d(64)
        self.linear = nn.Linear(512, 512)

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn_1(self.relu_1(self.conv_1(x)))
        x = self.bn_2(self.relu_2(self.conv_2(x)))
        n, c, h, w = x.size()
        x = self.linear(x.permute(0, 3, 2, 1).contiguous().view(n, w, h * c))
        return x.permute(0, 2, 1).contiguous().view(n, -1, 1, w)
