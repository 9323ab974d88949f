"""mmdet 2.x's ``ResNet`` backbone (registered as ``mmdet.ResNet``), as DBNet and friends use it.

Parameter names follow mmdet: ``conv1``/``bn1`` stem (or ``stem.*`` with ``deep_stem``), stages
``layer1``..``layer4`` of ``BasicBlock`` (depths 18, 34) or ``Bottleneck`` (50, 101, 152) blocks,
each with an optional ``downsample`` (``0`` conv, ``1`` norm; ``avg_down`` puts an average pool
first). ``style="caffe"`` puts a Bottleneck's stride on its first 1x1 conv instead of the 3x3.
Training-only settings (``frozen_stages``, ``norm_eval``, ``with_cp``,
``zero_init_residual``) do not change inference and are accepted and ignored. Deformable
convolution (``dcn``, e.g. ``DCNv2`` from `ocrserve.mmocr.models.deform_conv`) goes through
`build_conv_layer`, which names the supported types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models import deform_conv  # noqa: F401  (registers DCNv2 for ``dcn`` stages)
from ocrserve.mmocr.models.builder import BACKBONES
from ocrserve.mmocr.models.layers import build_conv_layer, build_norm_layer

__all__ = ["BasicBlock", "Bottleneck", "ResNet"]

_BN: Mapping[str, Any] = {"type": "BN", "requires_grad": True}


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection."""

    expansion: ClassVar[int] = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        style: str = "pytorch",
        conv_cfg: Mapping[str, Any] | None = None,
        norm_cfg: Mapping[str, Any] = _BN,
        dcn: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if dcn is not None:
            raise ConfigError("mmdet.ResNet: BasicBlock does not support dcn (mmdet neither)")
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, planes, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, planes, postfix=2)
        self.conv1 = build_conv_layer(
            conv_cfg,
            inplanes,
            planes,
            3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            bias=False,
        )
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(conv_cfg, planes, planes, 3, padding=1, bias=False)
        self.add_module(self.norm2_name, norm2)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(getattr(self, self.norm1_name)(self.conv1(x)))
        out = getattr(self, self.norm2_name)(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 convolutions (x4 channels) with a residual connection."""

    expansion: ClassVar[int] = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        style: str = "pytorch",
        conv_cfg: Mapping[str, Any] | None = None,
        norm_cfg: Mapping[str, Any] = _BN,
        dcn: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if style not in ("pytorch", "caffe"):
            raise ConfigError(f"mmdet.ResNet: style must be 'pytorch' or 'caffe', got {style!r}")
        conv1_stride, conv2_stride = (1, stride) if style == "pytorch" else (stride, 1)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, planes, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, planes, postfix=2)
        self.norm3_name, norm3 = build_norm_layer(norm_cfg, planes * self.expansion, postfix=3)
        self.conv1 = build_conv_layer(
            conv_cfg, inplanes, planes, kernel_size=1, stride=conv1_stride, bias=False
        )
        self.add_module(self.norm1_name, norm1)
        conv2_cfg = conv_cfg
        if dcn is not None:
            dcn = dict(dcn)
            if not dcn.pop("fallback_on_stride", False):
                conv2_cfg = dcn
        self.conv2 = build_conv_layer(
            conv2_cfg,
            planes,
            planes,
            kernel_size=3,
            stride=conv2_stride,
            padding=dilation,
            dilation=dilation,
            bias=False,
        )
        self.add_module(self.norm2_name, norm2)
        self.conv3 = build_conv_layer(
            conv_cfg, planes, planes * self.expansion, kernel_size=1, bias=False
        )
        self.add_module(self.norm3_name, norm3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(getattr(self, self.norm1_name)(self.conv1(x)))
        out = self.relu(getattr(self, self.norm2_name)(self.conv2(out)))
        out = getattr(self, self.norm3_name)(self.conv3(out))
        return self.relu(out + identity)


def _res_layer(
    block: type[BasicBlock] | type[Bottleneck],
    inplanes: int,
    planes: int,
    num_blocks: int,
    stride: int,
    dilation: int,
    style: str,
    avg_down: bool,
    conv_cfg: Mapping[str, Any] | None,
    norm_cfg: Mapping[str, Any],
    dcn: Mapping[str, Any] | None,
) -> nn.Sequential:
    """mmdet's ``ResLayer``: the first block downsamples (and widens) when needed."""
    downsample: nn.Module | None = None
    if stride != 1 or inplanes != planes * block.expansion:
        parts: list[nn.Module] = []
        conv_stride = stride
        if avg_down:
            conv_stride = 1
            parts.append(
                nn.AvgPool2d(stride, stride=stride, ceil_mode=True, count_include_pad=False)
            )
        parts.append(
            build_conv_layer(
                conv_cfg,
                inplanes,
                planes * block.expansion,
                kernel_size=1,
                stride=conv_stride,
                bias=False,
            )
        )
        parts.append(build_norm_layer(norm_cfg, planes * block.expansion)[1])
        downsample = nn.Sequential(*parts)
    common: dict[str, Any] = {
        "style": style,
        "conv_cfg": conv_cfg,
        "norm_cfg": norm_cfg,
        "dcn": dcn,
    }
    layers = [block(inplanes, planes, stride, dilation, downsample, **common)]
    for _ in range(1, num_blocks):
        layers.append(block(planes * block.expansion, planes, 1, dilation, None, **common))
    return nn.Sequential(*layers)


@BACKBONES.register(
    "mmdet.ResNet",
    ignore=("frozen_stages", "norm_eval", "with_cp", "zero_init_residual"),
)
class ResNet(nn.Module):
    """mmdet's ResNet; returns the feature maps of the stages in ``out_indices``."""

    arch_settings: ClassVar[dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, ...]]]]
    arch_settings = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(
        self,
        depth: int,
        in_channels: int = 3,
        stem_channels: int | None = None,
        base_channels: int = 64,
        num_stages: int = 4,
        strides: Sequence[int] = (1, 2, 2, 2),
        dilations: Sequence[int] = (1, 1, 1, 1),
        out_indices: Sequence[int] = (0, 1, 2, 3),
        style: str = "pytorch",
        deep_stem: bool = False,
        avg_down: bool = False,
        conv_cfg: Mapping[str, Any] | None = None,
        norm_cfg: Mapping[str, Any] = _BN,
        dcn: Mapping[str, Any] | None = None,
        stage_with_dcn: Sequence[bool] = (False, False, False, False),
        plugins: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        if depth not in self.arch_settings:
            supported = ", ".join(str(d) for d in sorted(self.arch_settings))
            raise ConfigError(f"mmdet.ResNet: unsupported depth {depth}; supported: {supported}")
        if not 1 <= num_stages <= 4 or not len(strides) == len(dilations) == num_stages:
            raise ConfigError("mmdet.ResNet: num_stages, strides and dilations do not agree")
        if max(out_indices) >= num_stages:
            raise ConfigError(f"mmdet.ResNet: out_indices {out_indices} exceed num_stages")
        if plugins:
            raise ConfigError("mmdet.ResNet: plugins are not supported yet")
        if dcn is not None and len(stage_with_dcn) != num_stages:
            raise ConfigError("mmdet.ResNet: stage_with_dcn needs one flag per stage")
        stem_channels = base_channels if stem_channels is None else stem_channels
        self.deep_stem = deep_stem
        self.out_indices = tuple(out_indices)
        if deep_stem:
            half = stem_channels // 2
            self.stem = nn.Sequential(
                build_conv_layer(conv_cfg, in_channels, half, 3, stride=2, padding=1, bias=False),
                build_norm_layer(norm_cfg, half)[1],
                nn.ReLU(inplace=True),
                build_conv_layer(conv_cfg, half, half, 3, stride=1, padding=1, bias=False),
                build_norm_layer(norm_cfg, half)[1],
                nn.ReLU(inplace=True),
                build_conv_layer(conv_cfg, half, stem_channels, 3, padding=1, bias=False),
                build_norm_layer(norm_cfg, stem_channels)[1],
                nn.ReLU(inplace=True),
            )
        else:
            self.conv1 = build_conv_layer(
                conv_cfg, in_channels, stem_channels, 7, stride=2, padding=3, bias=False
            )
            self.norm1_name, norm1 = build_norm_layer(norm_cfg, stem_channels, postfix=1)
            self.add_module(self.norm1_name, norm1)
            self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        block, stage_blocks = self.arch_settings[depth]
        inplanes = stem_channels
        self.res_layers: list[str] = []
        for i, num_blocks in enumerate(stage_blocks[:num_stages]):
            planes = base_channels * 2**i
            layer = _res_layer(
                block,
                inplanes,
                planes,
                num_blocks,
                strides[i],
                dilations[i],
                style,
                avg_down,
                conv_cfg,
                norm_cfg,
                dcn if dcn is not None and stage_with_dcn[i] else None,
            )
            inplanes = planes * block.expansion
            self.add_module(f"layer{i + 1}", layer)
            self.res_layers.append(f"layer{i + 1}")

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(getattr(self, self.norm1_name)(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
