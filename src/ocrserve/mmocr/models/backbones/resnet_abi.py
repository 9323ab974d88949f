"""MMOCR's ``ResNetABI`` (ABINet): a 3x3 stem (``conv1``, ``bn1``) and five stages of
`BasicBlock` with 1x1 first convolutions; channels double each stage from ``base_channels``."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ocrserve.mmocr.models.backbones.ocr_basic_block import BasicBlock
from ocrserve.mmocr.models.builder import BACKBONES

__all__ = ["ResNetABI"]


@BACKBONES.register("ResNetABI")
class ResNetABI(nn.Module):
    """ResNet-45 as ABINet uses it; a 32 x 128 input gives an 8 x 32 map."""

    def __init__(
        self,
        in_channels: int = 3,
        stem_channels: int = 32,
        base_channels: int = 32,
        arch_settings: Sequence[int] = (3, 4, 6, 6, 3),
        strides: Sequence[int] = (2, 1, 2, 1, 1),
        out_indices: Sequence[int] | None = None,
        last_stage_pool: bool = False,
    ) -> None:
        super().__init__()
        self.out_indices = list(out_indices) if out_indices else None
        self.conv1 = nn.Conv2d(in_channels, stem_channels, kernel_size=3, stride=1, padding=1)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.res_layers: list[str] = []
        inplanes, planes = stem_channels, base_channels
        for i, num_blocks in enumerate(arch_settings):
            stride = int(strides[i])
            downsample = None
            if stride != 1 or inplanes != planes:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
                )
            blocks = [BasicBlock(inplanes, planes, stride, downsample, use_conv1x1=True)]
            blocks += [BasicBlock(planes, planes, use_conv1x1=True) for _ in range(1, num_blocks)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.res_layers.append(f"layer{i + 1}")
            inplanes, planes = planes, planes * 2

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        x = self.relu1(self.bn1(self.conv1(x)))
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if self.out_indices and i in self.out_indices:
                outs.append(x)
        return tuple(outs) if self.out_indices else x
