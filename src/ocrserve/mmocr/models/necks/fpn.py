"""mmdet 2.x's ``FPN`` neck (registered as ``mmdet.FPN``), as FCENet uses it.

Lateral 1x1 ``ConvModule``s on the backbone levels ``start_level..end_level``, top-down sum with
upsampling (``upsample_cfg``, nearest by default), a 3x3 ``fpn_convs`` ConvModule per level, then
``num_outs - levels`` extra levels: max pooling (``add_extra_convs=False``) or stride-2 3x3 convs
on the input, lateral or output (``"on_input"``, ``"on_lateral"``, ``"on_output"``), with a ReLU
first when ``relu_before_extra_convs``. Names are mmdet's (``lateral_convs.N.conv``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import NECKS
from ocrserve.mmocr.models.layers import ConvModule

__all__ = ["FPN"]


@NECKS.register("mmdet.FPN", "FPN")
class FPN(nn.Module):
    """Returns ``num_outs`` maps of ``out_channels``, finest first."""

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int,
        start_level: int = 0,
        end_level: int = -1,
        add_extra_convs: bool | str = False,
        relu_before_extra_convs: bool = False,
        no_norm_on_lateral: bool = False,
        conv_cfg: Mapping[str, Any] | None = None,
        norm_cfg: Mapping[str, Any] | None = None,
        act_cfg: Mapping[str, Any] | None = None,
        upsample_cfg: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        self.num_outs = num_outs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.upsample_cfg = dict(upsample_cfg or {"mode": "nearest"})
        if end_level == -1 or end_level == len(self.in_channels) - 1:
            self.backbone_end_level = len(self.in_channels)
        elif 0 < end_level < len(self.in_channels):
            self.backbone_end_level = end_level + 1
        else:
            raise ConfigError(f"mmdet.FPN: bad end_level {end_level}")
        self.start_level = start_level
        if add_extra_convs is True:
            add_extra_convs = "on_input"
        if add_extra_convs not in (False, "on_input", "on_lateral", "on_output"):
            raise ConfigError(f"mmdet.FPN: bad add_extra_convs {add_extra_convs!r}")
        self.add_extra_convs = add_extra_convs
        common: dict[str, Any] = {"conv_cfg": conv_cfg, "act_cfg": act_cfg, "inplace": False}
        self.lateral_convs = nn.ModuleList(
            ConvModule(
                self.in_channels[i],
                out_channels,
                1,
                norm_cfg=norm_cfg if not no_norm_on_lateral else None,
                **common,
            )
            for i in range(start_level, self.backbone_end_level)
        )
        self.fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg, **common)
            for _ in range(start_level, self.backbone_end_level)
        )
        extra = num_outs - self.backbone_end_level + start_level
        if add_extra_convs and extra >= 1:
            for i in range(extra):
                channels = out_channels
                if i == 0 and add_extra_convs == "on_input":
                    channels = self.in_channels[self.backbone_end_level - 1]
                self.fpn_convs.append(
                    ConvModule(
                        channels, out_channels, 3, stride=2, padding=1, norm_cfg=norm_cfg, **common
                    )
                )

    def forward(self, inputs: Sequence[Tensor]) -> tuple[Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"mmdet.FPN expects {len(self.in_channels)} inputs, got {len(inputs)}")
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):
            if "scale_factor" in self.upsample_cfg:
                up = F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                up = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], **self.upsample_cfg)
            laterals[i - 1] = laterals[i - 1] + up
        used = len(laterals)
        outs = [self.fpn_convs[i](laterals[i]) for i in range(used)]
        if self.num_outs > len(outs):
            if not self.add_extra_convs:
                for _ in range(self.num_outs - used):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                if self.add_extra_convs == "on_input":
                    source = inputs[self.backbone_end_level - 1]
                elif self.add_extra_convs == "on_lateral":
                    source = laterals[-1]
                else:
                    source = outs[-1]
                outs.append(self.fpn_convs[used](source))
                for i in range(used + 1, self.num_outs):
                    last = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                    outs.append(self.fpn_convs[i](last))
        return tuple(outs)
