"""MMOCR's ``FPN_UNet`` neck (TextSnake, DRRG): a U-Net-like decoder back to the input size.

C5 goes through ``up4`` (a stride-2 transposed conv, ReLU); then, from C4 down to C2, the map
so far is concatenated with the level and goes through an `UpBlock` (1x1 conv, ReLU, 3x3 conv,
ReLU, stride-2 transposed conv) and a ReLU. A last `UpBlock` (no ReLU after it) doubles the
size once more: the output is ``out_channels`` wide at the backbone input's resolution.
Block widths are ``out_channels * 2 ** i`` capped at 256, as MMOCR computes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import NECKS

__all__ = ["FPN_UNet", "UpBlock"]


class UpBlock(nn.Module):
    """``conv1x1`` -> ReLU -> ``conv3x3`` -> ReLU -> ``deconv`` (4x4, stride 2: twice the size)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1x1 = nn.Conv2d(in_channels, in_channels, kernel_size=1, stride=1, padding=0)
        self.conv3x3 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.deconv = nn.ConvTranspose2d(
            out_channels, out_channels, kernel_size=4, stride=2, padding=1
        )

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv1x1(x))
        x = F.relu(self.conv3x3(x))
        return self.deconv(x)


@NECKS.register("FPN_UNet")
class FPN_UNet(nn.Module):  # noqa: N801 - MMOCR's type name
    """C2-C5 -> one ``out_channels`` map at four times C2's resolution."""

    def __init__(self, in_channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        if len(in_channels) != 4:
            raise ConfigError(f"FPN_UNet takes 4 input levels, got in_channels={in_channels!r}")
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        widths = [out_channels] + [min(out_channels * 2**i, 256) for i in range(4)]
        inputs = (
            [widths[1]] + [self.in_channels[i] + widths[i + 2] for i in range(3)] + [in_channels[3]]
        )
        self.up4 = nn.ConvTranspose2d(inputs[4], widths[4], kernel_size=4, stride=2, padding=1)
        self.up_block3 = UpBlock(inputs[3], widths[3])
        self.up_block2 = UpBlock(inputs[2], widths[2])
        self.up_block1 = UpBlock(inputs[1], widths[1])
        self.up_block0 = UpBlock(inputs[0], widths[0])

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        if len(inputs) != 4:
            raise ValueError(f"FPN_UNet expects 4 inputs, got {len(inputs)}")
        c2, c3, c4, c5 = inputs
        x = F.relu(self.up4(c5))
        x = F.relu(self.up_block3(torch.cat([x, c4], dim=1)))
        x = F.relu(self.up_block2(torch.cat([x, c3], dim=1)))
        x = F.relu(self.up_block1(torch.cat([x, c2], dim=1)))
        return self.up_block0(x)
