"""MMOCR's ``ResNet31OCR``: the backbone of SAR, NRTR (``nrtr_r31``) and RobustScanner.

``conv1_1``/``conv1_2`` (3x3, BN, ReLU), then four stages ``i = 2..5`` of
``pool{i}`` (2x2 max pooling, ceil mode; stage 4 by ``stage4_pool_cfg``, stage 5 only with
``last_stage_pool``) -> ``block{i}`` (`BasicBlock` x ``layers[i - 2]``) -> ``conv{i}``, ``bn{i}``,
ReLU.
A 48-pixel-high input gives a 6-row map at 1/4 of the width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from ocrserve.mmocr.models.backbones.ocr_basic_block import BasicBlock, _pair
from ocrserve.mmocr.models.builder import BACKBONES

__all__ = ["ResNet31OCR"]


def _conv_bn_relu(module: nn.Module, suffix: str, c_in: int, c_out: int) -> None:
    module.add_module(f"conv{suffix}", nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1))
    module.add_module(f"bn{suffix}", nn.BatchNorm2d(c_out))
    module.add_module(f"relu{suffix}", nn.ReLU(inplace=True))


@BACKBONES.register("ResNet31OCR")
class ResNet31OCR(nn.Module):
    """ResNet-31 for text recognition (``channels`` needs 6 entries; MMOCR's default has 7)."""

    def __init__(
        self,
        base_channels: int = 3,
        layers: Sequence[int] = (1, 2, 5, 3),
        channels: Sequence[int] = (64, 128, 256, 256, 512, 512, 512),
        out_indices: Sequence[int] | None = None,
        stage4_pool_cfg: Mapping[str, Any] | None = None,
        last_stage_pool: bool = False,
    ) -> None:
        super().__init__()
        pool4 = dict(stage4_pool_cfg or {"kernel_size": (2, 1), "stride": (2, 1)})
        self.out_indices = list(out_indices) if out_indices is not None else None
        self.last_stage_pool = last_stage_pool
        _conv_bn_relu(self, "1_1", base_channels, channels[0])
        _conv_bn_relu(self, "1_2", channels[0], channels[1])
        pools: list[nn.Module | None] = [
            nn.MaxPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
            nn.MaxPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
            nn.MaxPool2d(
                kernel_size=_pair(pool4["kernel_size"]),
                stride=_pair(pool4["stride"]),
                padding=0,
                ceil_mode=True,
            ),
            nn.MaxPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True)
            if last_stage_pool
            else None,
        ]
        for i in range(4):
            index = i + 2
            self.add_module(f"pool{index}", pools[i])
            self.add_module(
                f"block{index}", self._make_layer(channels[i + 1], channels[i + 2], layers[i])
            )
            _conv_bn_relu(self, str(index), channels[i + 2], channels[i + 2])

    @staticmethod
    def _make_layer(c_in: int, c_out: int, blocks: int) -> nn.Sequential:
        layers = []
        for _ in range(blocks):
            downsample = None
            if c_in != c_out:
                downsample = nn.Sequential(
                    nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, bias=False),
                    nn.BatchNorm2d(c_out),
                )
            layers.append(BasicBlock(c_in, c_out, downsample=downsample))
            c_in = c_out
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        for suffix in ("1_1", "1_2"):
            x = getattr(self, f"conv{suffix}")(x)
            x = getattr(self, f"bn{suffix}")(x)
            x = getattr(self, f"relu{suffix}")(x)
        outs = []
        for index in range(2, 6):
            pool = getattr(self, f"pool{index}")
            if pool is not None:
                x = pool(x)
            x = getattr(self, f"block{index}")(x)
            x = getattr(self, f"conv{index}")(x)
            x = getattr(self, f"bn{index}")(x)
            x = getattr(self, f"relu{index}")(x)
            outs.append(x)
        if self.out_indices is not None:
            return tuple(outs[i] for i in self.out_indices)
        return x
