"""MMOCR's ``FPNC`` neck (DBNet): lateral 1x1 convs, top-down sum, 3x3 smoothing, upsample, concat.

With ``asf_cfg`` (DBNet++) the concatenated maps are reweighted by adaptive scale fusion
(`ScaleChannelSpatialAttention`); ``conv_after_concat`` adds a conv-BN-ReLU on the result. Names
are MMOCR's (``lateral_convs.N.conv``, ``smooth_convs.N.conv``, ``asf_conv``, ``asf_attn``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import NECKS
from ocrserve.mmocr.models.layers import ConvModule

__all__ = ["FPNC", "ScaleChannelSpatialAttention"]

_BN_RELU: dict[str, Any] = {"norm_cfg": {"type": "BN"}, "act_cfg": {"type": "ReLU"}}
_PLAIN: dict[str, Any] = {"norm_cfg": None, "act_cfg": None}


@NECKS.register("FPNC")
class FPNC(nn.Module):
    """Fuses C2-C5 features into one map at the resolution of the first."""

    def __init__(
        self,
        in_channels: Sequence[int],
        lateral_channels: int = 256,
        out_channels: int = 64,
        bias_on_lateral: bool = False,
        bn_re_on_lateral: bool = False,
        bias_on_smooth: bool = False,
        bn_re_on_smooth: bool = False,
        asf_cfg: Mapping[str, Any] | None = None,
        conv_after_concat: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        num = len(self.in_channels)
        lateral = _BN_RELU if bn_re_on_lateral else _PLAIN
        smooth = _BN_RELU if bn_re_on_smooth else _PLAIN
        self.lateral_convs = nn.ModuleList(
            ConvModule(c, lateral_channels, 1, bias=bias_on_lateral, inplace=False, **lateral)
            for c in self.in_channels
        )
        self.smooth_convs = nn.ModuleList(
            ConvModule(
                lateral_channels,
                out_channels,
                3,
                padding=1,
                bias=bias_on_smooth,
                inplace=False,
                **smooth,
            )
            for _ in self.in_channels
        )
        self.asf_cfg = asf_cfg
        if asf_cfg is not None:
            if asf_cfg.get("attention_type") != "ScaleChannelSpatial":
                raise ConfigError(
                    f"FPNC: unsupported asf_cfg attention_type {asf_cfg.get('attention_type')!r};"
                    " supported: ScaleChannelSpatial"
                )
            fused = out_channels * num
            self.asf_conv = ConvModule(fused, fused, 3, padding=1, inplace=False, **_PLAIN)
            self.asf_attn = ScaleChannelSpatialAttention(fused, fused // 4, num)
        self.conv_after_concat = conv_after_concat
        if conv_after_concat:
            fused = out_channels * num
            self.out_conv = ConvModule(fused, fused, 3, padding=1, inplace=False, **_BN_RELU)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"FPNC expects {len(self.in_channels)} inputs, got {len(inputs)}")
        laterals = [conv(inputs[i]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[2:], mode="nearest"
            )
        outs = [conv(laterals[i]) for i, conv in enumerate(self.smooth_convs)]
        outs = [F.interpolate(o, size=outs[0].shape[2:], mode="nearest") for o in outs]
        out = torch.cat(outs, dim=1)
        if self.asf_cfg is not None:
            attention = self.asf_attn(self.asf_conv(out))
            out = torch.cat([attention[:, i : i + 1] * o for i, o in enumerate(outs)], dim=1)
        if self.conv_after_concat:
            out = self.out_conv(out)
        return out


class ScaleChannelSpatialAttention(nn.Module):
    """DBNet++'s adaptive scale fusion attention: one weight map per input scale."""

    def __init__(self, in_channels: int, c_wise_channels: int, out_channels: int) -> None:
        super().__init__()
        relu, sigmoid = {"type": "ReLU"}, {"type": "Sigmoid"}
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.channel_wise = nn.Sequential(
            ConvModule(in_channels, c_wise_channels, 1, bias=False, act_cfg=relu, inplace=False),
            ConvModule(c_wise_channels, in_channels, 1, bias=False, act_cfg=sigmoid, inplace=False),
        )
        self.spatial_wise = nn.Sequential(
            ConvModule(1, 1, 3, padding=1, bias=False, act_cfg=relu, inplace=False),
            ConvModule(1, 1, 1, bias=False, act_cfg=sigmoid, inplace=False),
        )
        self.attention_wise = ConvModule(
            in_channels, out_channels, 1, bias=False, act_cfg=sigmoid, inplace=False
        )

    def forward(self, inputs: Tensor) -> Tensor:
        out = self.channel_wise(self.avg_pool(inputs)) + inputs
        mean = torch.mean(out, dim=1, keepdim=True)
        out = self.spatial_wise(mean) + out
        return self.attention_wise(out)
