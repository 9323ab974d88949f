"""MMOCR's ``TextSnakeHead``: one 1x1 conv giving TextSnake's five maps at the input size.

Output ``N x 5 x H x W``, raw: text region and text centre line logits, then the sine, cosine
and radius maps. MMOCR's head applies no activation at test time; ``TextSnakePostprocessor``
takes the sigmoid of the first two channels and normalises sine and cosine.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import HEADS

__all__ = ["TextSnakeHead"]


@HEADS.register("TextSnakeHead")
class TextSnakeHead(nn.Module):
    """``out_conv``: a 1x1 convolution, ``in_channels`` -> ``out_channels`` (5)."""

    default_postprocessor: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"type": "TextSnakePostprocessor", "text_repr_type": "poly"}
    )

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 5,
        downsample_ratio: float = 1.0,
        **kwargs: Any,
    ) -> None:
        # Like MMOCR's, takes and ignores loss, postprocessor (built by the predictor),
        # train_cfg, test_cfg and the legacy text_repr_type / decoding_type.
        super().__init__()
        if not isinstance(in_channels, int):
            raise ConfigError(f"TextSnakeHead: in_channels must be an int, got {in_channels!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.downsample_ratio = downsample_ratio
        self.out_conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, padding=0)

    def forward(self, inputs: Tensor) -> Tensor:
        return self.out_conv(inputs)
