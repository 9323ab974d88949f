"""MMOCR's recognition ``ResNet`` (registered as ``ResNet``; mmdet's is ``mmdet.ResNet``), as
MASTER configures it: a stem of ``ConvModule`` (``stem_layers``), stages ``layer1..N`` of
`BasicBlock` (with block plugins such as ``GCAModule``), and stage plugins before or after each
stage (``maxpool2d_before_stage_1``, ``conv_block_after_stage_1``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.backbones.ocr_basic_block import BasicBlock, _pair, build_plugin
from ocrserve.mmocr.models.builder import BACKBONES
from ocrserve.mmocr.models.layers import ConvModule

__all__ = ["OCRResNet"]


@BACKBONES.register("ResNet")
class OCRResNet(nn.Module):
    """MMOCR 0.x ``mmocr.models.textrecog.backbones.ResNet``."""

    def __init__(
        self,
        in_channels: int,
        stem_channels: int | Sequence[int],
        block_cfgs: Mapping[str, Any],
        arch_layers: Sequence[int],
        arch_channels: Sequence[int],
        strides: Sequence[int | Sequence[int]],
        out_indices: Sequence[int] | None = None,
        plugins: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        if not len(arch_layers) == len(arch_channels) == len(strides):
            raise ConfigError("ResNet: arch_layers, arch_channels and strides differ in length")
        if block_cfgs.get("type") != "BasicBlock":
            raise ConfigError(f"ResNet: unsupported block type {block_cfgs.get('type')!r}")
        self.out_indices = list(out_indices) if out_indices else None
        stems = [stem_channels] if isinstance(stem_channels, int) else list(stem_channels)
        bn, relu = {"type": "BN"}, {"type": "ReLU"}
        layers = []
        for channels in stems:
            layers.append(
                ConvModule(in_channels, channels, 3, 1, 1, bias=False, norm_cfg=bn, act_cfg=relu)
            )
            in_channels = channels
        self.stem_layers = nn.Sequential(*layers)
        inplanes = stems[-1]
        block_kwargs = {k: v for k, v in block_cfgs.items() if k != "type"}
        self.plugin_before: list[list[str]] = []
        self.plugin_after: list[list[str]] = []
        self.res_layers: list[str] = []
        for i, num_blocks in enumerate(arch_layers):
            channel = arch_channels[i]
            before: list[str] = []
            after: list[str] = []
            for plugin in plugins or ():
                stages = plugin.get("stages")
                if stages is not None and len(stages) != len(arch_layers):
                    raise ConfigError("ResNet: a plugin's stages must have one flag per stage")
                if stages is not None and not stages[i]:
                    continue
                position = plugin.get("position")
                if position not in ("before_stage", "after_stage"):
                    raise ConfigError(f"ResNet: unsupported plugin position {position!r}")
                name, layer = build_plugin(plugin["cfg"], f"_{position}_{i + 1}", channel, channel)
                self.add_module(name, layer)
                (before if position == "before_stage" else after).append(name)
            self.plugin_before.append(before)
            self.plugin_after.append(after)
            stride2 = _pair(strides[i])
            downsample = None
            if stride2 != (1, 1) or inplanes != channel:
                downsample = ConvModule(inplanes, channel, 1, stride2, norm_cfg=bn, act_cfg=None)
            blocks = [BasicBlock(inplanes, channel, stride2, downsample, **block_kwargs)]
            blocks += [BasicBlock(channel, channel, **block_kwargs) for _ in range(1, num_blocks)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.res_layers.append(f"layer{i + 1}")
            inplanes = channel

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        x = self.stem_layers(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            for name in self.plugin_before[i]:
                x = getattr(self, name)(x)
            x = getattr(self, layer_name)(x)
            for name in self.plugin_after[i]:
                x = getattr(self, name)(x)
            if self.out_indices and i in self.out_indices:
                outs.append(x)
        return tuple(outs) if self.out_indices else x
