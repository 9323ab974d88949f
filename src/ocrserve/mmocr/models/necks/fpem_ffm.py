"""MMOCR's ``FPEM_FFM`` neck (PANet): feature pyramid enhancement modules and their fusion.

Each backbone stage is reduced to ``conv_out`` channels (``reduce_conv_c2..c5``: 1x1 conv, BN,
ReLU), then ``fpem_repeat`` FPEMs refine the pyramid (up-scale then down-scale passes of
depthwise-separable convolutions, ``fpems.N.up_add1..3`` / ``down_add1..3``); the feature fusion
module sums each level over the FPEMs and upsamples levels 3-5 bilinearly to level 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import NECKS

__all__ = ["FPEM", "FPEM_FFM", "SeparableConv2d"]


class SeparableConv2d(nn.Module):
    """3x3 depthwise conv (``stride``), 1x1 pointwise conv, BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise_conv = nn.Conv2d(
            in_channels, in_channels, 3, padding=1, stride=stride, groups=in_channels
        )
        self.pointwise_conv = nn.Conv2d(in_channels, out_channels, 1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.pointwise_conv(self.depthwise_conv(x))))


def _upsample_add(x: Tensor, y: Tensor) -> Tensor:
    return F.interpolate(x, size=y.shape[2:]) + y


class FPEM(nn.Module):
    """One feature pyramid enhancement module: up-scale then down-scale enhancement."""

    def __init__(self, in_channels: int = 128) -> None:
        super().__init__()
        self.up_add1 = SeparableConv2d(in_channels, in_channels, 1)
        self.up_add2 = SeparableConv2d(in_channels, in_channels, 1)
        self.up_add3 = SeparableConv2d(in_channels, in_channels, 1)
        self.down_add1 = SeparableConv2d(in_channels, in_channels, 2)
        self.down_add2 = SeparableConv2d(in_channels, in_channels, 2)
        self.down_add3 = SeparableConv2d(in_channels, in_channels, 2)

    def forward(
        self, c2: Tensor, c3: Tensor, c4: Tensor, c5: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        c4 = self.up_add1(_upsample_add(c5, c4))
        c3 = self.up_add2(_upsample_add(c4, c3))
        c2 = self.up_add3(_upsample_add(c3, c2))
        c3 = self.down_add1(_upsample_add(c3, c2))
        c4 = self.down_add2(_upsample_add(c4, c3))
        c5 = self.down_add3(_upsample_add(c5, c4))
        return c2, c3, c4, c5


def _reduce(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels), nn.ReLU()
    )


@NECKS.register("FPEM_FFM")
class FPEM_FFM(nn.Module):  # noqa: N801 (MMOCR's type name)
    """Returns the four fused levels at the resolution of the first."""

    def __init__(
        self,
        in_channels: Sequence[int],
        conv_out: int = 128,
        fpem_repeat: int = 2,
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.reduce_conv_c2 = _reduce(in_channels[0], conv_out)
        self.reduce_conv_c3 = _reduce(in_channels[1], conv_out)
        self.reduce_conv_c4 = _reduce(in_channels[2], conv_out)
        self.reduce_conv_c5 = _reduce(in_channels[3], conv_out)
        self.align_corners = align_corners
        self.fpems = nn.ModuleList(FPEM(conv_out) for _ in range(fpem_repeat))

    def forward(self, x: Sequence[Tensor]) -> tuple[Tensor, ...]:
        c2 = self.reduce_conv_c2(x[0])
        c3 = self.reduce_conv_c3(x[1])
        c4 = self.reduce_conv_c4(x[2])
        c5 = self.reduce_conv_c5(x[3])
        fused: list[Tensor] = []
        for i, fpem in enumerate(self.fpems):
            c2, c3, c4, c5 = fpem(c2, c3, c4, c5)
            fused = [c2, c3, c4, c5] if i == 0 else [a + b for a, b in zip(fused, (c2, c3, c4, c5))]
        size = fused[0].shape[-2:]
        ups = [
            F.interpolate(f, size, mode="bilinear", align_corners=self.align_corners)
            for f in fused[1:]
        ]
        return (fused[0], *ups)
