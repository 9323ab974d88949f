"""Building blocks named as mmcv names them, so MMCV-built checkpoints load unchanged.

`ConvModule` is mmcv's conv -> norm -> activation block (``conv``, ``bn``/``gn``, ``activate``);
`build_conv_layer` and `build_norm_layer` pick layers by mmcv's config types. Convolution types
other than plain ``Conv2d`` (deformable ``DCN``/``DCNv2``) are the seam for later architectures:
register them in `CONV_LAYERS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.registry import Registry

__all__ = [
    "CONV_LAYERS",
    "NORM_LAYERS",
    "RELU",
    "ConvModule",
    "build_conv_layer",
    "build_norm_layer",
]

#: mmcv's default activation config.
RELU: Mapping[str, Any] = MappingProxyType({"type": "ReLU"})

#: Convolution layers by mmcv type name.
CONV_LAYERS: Registry[nn.Module] = Registry("convolution layer")
CONV_LAYERS.register("Conv", "Conv2d")(nn.Conv2d)

#: Norm layer type -> (mmcv's name abbreviation, builder(num_features, **cfg)).
NORM_LAYERS: Registry[nn.Module] = Registry("norm layer")


def _batch_norm(
    num_features: int, eps: float = 1e-5, momentum: float = 0.1, requires_grad: bool = True
) -> nn.Module:
    return nn.BatchNorm2d(num_features, eps=eps, momentum=momentum)


def _group_norm(
    num_features: int, num_groups: int, eps: float = 1e-5, requires_grad: bool = True
) -> nn.Module:
    return nn.GroupNorm(num_groups, num_features, eps=eps)


NORM_LAYERS.register("BN", "BN2d", "SyncBN")(_batch_norm)
NORM_LAYERS.register("GN")(_group_norm)
_NORM_ABBR = {"BN": "bn", "BN2d": "bn", "SyncBN": "bn", "GN": "gn"}


def build_conv_layer(cfg: Mapping[str, Any] | None, *args: Any, **kwargs: Any) -> nn.Module:
    """A convolution of the type ``cfg["type"]`` (plain ``nn.Conv2d`` when ``cfg`` is None)."""
    if cfg is None:
        return nn.Conv2d(*args, **kwargs)
    builder = CONV_LAYERS.get(str(cfg.get("type")))
    extra = {k: v for k, v in cfg.items() if k != "type"}
    return builder(*args, **kwargs, **extra)


def build_norm_layer(
    cfg: Mapping[str, Any], num_features: int, postfix: int | str = ""
) -> tuple[str, nn.Module]:
    """``(name, layer)`` as mmcv builds it: the name is ``bn1``, ``gn``, ... (type + postfix)."""
    kind = str(cfg.get("type"))
    builder = NORM_LAYERS.get(kind)
    layer = builder(num_features, **{k: v for k, v in cfg.items() if k != "type"})
    return f"{_NORM_ABBR[kind]}{postfix}", layer


def _activation(cfg: Mapping[str, Any], inplace: bool) -> nn.Module:
    kind = cfg.get("type")
    if kind == "ReLU":
        return nn.ReLU(inplace=inplace)
    if kind == "LeakyReLU":
        return nn.LeakyReLU(cfg.get("negative_slope", 0.01), inplace=inplace)
    if kind == "Sigmoid":
        return nn.Sigmoid()
    if kind == "Tanh":
        return nn.Tanh()
    raise ConfigError(
        f"Unsupported activation type {kind!r}; supported: LeakyReLU, ReLU, Sigmoid, Tanh"
    )


class ConvModule(nn.Module):
    """mmcv's ``ConvModule`` in its default order (conv, norm, activation)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool | str = "auto",
        conv_cfg: Mapping[str, Any] | None = None,
        norm_cfg: Mapping[str, Any] | None = None,
        act_cfg: Mapping[str, Any] | None = RELU,
        inplace: bool = True,
    ) -> None:
        super().__init__()
        with_bias = norm_cfg is None if bias == "auto" else bool(bias)
        self.conv = build_conv_layer(
            conv_cfg,
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=with_bias,
        )
        self.norm_name: str | None = None
        if norm_cfg is not None:
            self.norm_name, norm = build_norm_layer(norm_cfg, out_channels)
            self.add_module(self.norm_name, norm)
        self.activate = _activation(act_cfg, inplace) if act_cfg is not None else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.norm_name is not None:
            x = getattr(self, self.norm_name)(x)
        if self.activate is not None:
            x = self.activate(x)
        return x
