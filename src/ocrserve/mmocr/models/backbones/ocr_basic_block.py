"""MMOCR's recognition ``BasicBlock`` and the block/stage plugins its ResNets take.

The block is ``conv1 bn1 relu conv2 bn2 (+ downsample) relu`` with 3x3 convolutions (``conv1``
1x1 with ``use_conv1x1``), no biases. Plugins are built as mmcv's ``build_plugin_layer`` builds
them and named as it names them (``gca_module``, ``conv_block``, ``maxpool2d`` + a postfix), so
MMOCR checkpoints load. A plugin position runs each plugin on the position's input, keeping only
the last result, as MMOCR's ``forward_plugin`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.layers import ConvModule

__all__ = ["BasicBlock", "GCAModule", "Maxpool2d", "build_plugin"]


class Maxpool2d(nn.Module):
    """MMOCR's ``Maxpool2d`` plugin (``model`` holds the pooling)."""

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int],
        padding: int | Sequence[int] = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.model = nn.MaxPool2d(_pair(kernel_size), _pair(stride), _pair(padding))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class GCAModule(nn.Module):
    """MMOCR's global context attention plugin (MASTER), multi-head attention pooling."""

    def __init__(
        self,
        in_channels: int,
        ratio: float,
        n_head: int,
        pooling_type: str = "att",
        scale_attn: bool = False,
        fusion_type: str = "channel_add",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if pooling_type not in ("avg", "att"):
            raise ConfigError(f"GCAModule: pooling_type must be avg or att, got {pooling_type!r}")
        if fusion_type not in ("channel_add", "channel_mul", "channel_concat"):
            raise ConfigError(f"GCAModule: unsupported fusion_type {fusion_type!r}")
        if in_channels % n_head or in_channels < 8:
            raise ConfigError("GCAModule: in_channels must be >= 8 and divisible by n_head")
        self.n_head = n_head
        self.in_channels = in_channels
        self.planes = int(in_channels * ratio)
        self.pooling_type = pooling_type
        self.fusion_type = fusion_type
        self.scale_attn = scale_attn
        self.head_channels = in_channels // n_head
        if pooling_type == "att":
            self.conv_mask = nn.Conv2d(self.head_channels, 1, kernel_size=1)
        else:
            self.avg_pool = nn.AdaptiveAvgPool2d(1)
        transform = nn.Sequential(
            nn.Conv2d(in_channels, self.planes, kernel_size=1),
            nn.LayerNorm([self.planes, 1, 1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(self.planes, in_channels, kernel_size=1),
        )
        if fusion_type == "channel_add":
            self.channel_add_conv = transform
        elif fusion_type == "channel_mul":
            self.channel_mul_conv = transform
        else:
            self.channel_concat_conv = transform
            self.cat_conv = nn.Conv2d(2 * in_channels, in_channels, kernel_size=1)

    def spatial_pool(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.size()
        if self.pooling_type != "att":
            return self.avg_pool(x)
        heads = x.view(batch * self.n_head, self.head_channels, height, width)
        values = heads.view(batch * self.n_head, self.head_channels, height * width).unsqueeze(1)
        mask = self.conv_mask(heads).view(batch * self.n_head, 1, height * width)
        if self.scale_attn and self.n_head > 1:
            mask = mask / (self.head_channels**0.5)
        mask = torch.softmax(mask, dim=2).unsqueeze(-1)
        context = torch.matmul(values, mask)
        return context.view(batch, self.n_head * self.head_channels, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        context = self.spatial_pool(x)
        if self.fusion_type == "channel_mul":
            return x * torch.sigmoid(self.channel_mul_conv(context))
        if self.fusion_type == "channel_add":
            return x + self.channel_add_conv(context)
        term = self.channel_concat_conv(context)
        _, _, height, width = x.shape
        out = self.cat_conv(torch.cat([x, term.expand(-1, -1, height, width)], dim=1))
        out = nn.functional.layer_norm(out, [self.in_channels, height, width])
        return nn.functional.relu(out)


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    """An int or a 2-sequence (configs give lists) as a ``(h, w)`` tuple."""
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


#: Plugin type -> (mmcv's name abbreviation, builder(in_channels, out_channels, **cfg)).
_PLUGINS: dict[str, tuple[str, Any]] = {
    "Maxpool2d": ("maxpool2d", lambda i, o, **cfg: Maxpool2d(**cfg)),
    "GCAModule": ("gca_module", lambda i, o, **cfg: GCAModule(i, **cfg)),
    "ConvModule": ("conv_block", lambda i, o, **cfg: ConvModule(i, o, **cfg)),
}


def build_plugin(
    cfg: Mapping[str, Any], postfix: str, in_channels: int, out_channels: int
) -> tuple[str, nn.Module]:
    """``(name, layer)`` as mmcv's ``build_plugin_layer``: the name is abbreviation + postfix."""
    kind = str(cfg.get("type"))
    if kind not in _PLUGINS:
        raise ConfigError(f"Unsupported plugin type {kind!r}; supported: {', '.join(_PLUGINS)}")
    abbr, builder = _PLUGINS[kind]
    kwargs = {k: (_pair(v) if isinstance(v, list) else v) for k, v in cfg.items() if k != "type"}
    return f"{abbr}{postfix}", builder(in_channels, out_channels, **kwargs)


class BasicBlock(nn.Module):
    """MMOCR's ``BasicBlock`` (``mmocr.models.textrecog.layers``), plugins included."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int | Sequence[int] = 1,
        downsample: nn.Module | None = None,
        use_conv1x1: bool = False,
        plugins: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        stride = _pair(stride)
        if use_conv1x1:
            self.conv1 = nn.Conv2d(inplanes, planes, 1, 1, 0, bias=False)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self._plugins: dict[str, list[str]] = {}
        if plugins:
            plugin_list = [plugins] if isinstance(plugins, Mapping) else list(plugins)
            channels = {"before_conv1": inplanes}
            for position in ("before_conv1", "after_conv1", "after_conv2", "after_shortcut"):
                names = []
                for plugin in plugin_list:
                    if plugin["position"] != position:
                        continue
                    cfg = dict(plugin["cfg"])
                    postfix = str(cfg.pop("postfix", ""))
                    width = channels.get(position, planes)
                    name, layer = build_plugin(cfg, postfix, width, width)
                    if hasattr(self, name):
                        raise ConfigError(f"BasicBlock: duplicate plugin {name}")
                    self.add_module(name, layer)
                    names.append(name)
                self._plugins[position] = names

    def _plugin(self, x: Tensor, position: str) -> Tensor:
        out = x
        for name in self._plugins.get(position, ()):
            out = getattr(self, name)(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        x = self._plugin(x, "before_conv1")
        residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self._plugin(out, "after_conv1")
        out = self.bn2(self.conv2(out))
        out = self._plugin(out, "after_conv2")
        if self.downsample is not None:
            residual = self.downsample(x)
        out = self.relu(out + residual)
        return self._plugin(out, "after_shortcut")
