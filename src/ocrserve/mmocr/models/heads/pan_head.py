"""MMOCR's ``PANHead``: one 1x1 conv over the concatenated neck outputs.

Output ``N x out_channels x H/4 x W/4`` logits: text, kernel, then (PANet) the similarity
vectors that pixel aggregation compares. ``PSEHead`` (`ocrserve.mmocr.models.heads.pse_head`) is the
same head with PSENet's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import HEADS

__all__ = ["PANHead"]


@HEADS.register("PANHead")
class PANHead(nn.Module):
    """Concatenate the inputs (if a tuple), then ``out_conv``."""

    default_postprocessor: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"type": "PANPostprocessor", "text_repr_type": "poly"}
    )

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        downsample_ratio: float = 0.25,
        **kwargs: Any,
    ) -> None:
        # Like MMOCR's, takes and ignores loss, postprocessor (built by the predictor),
        # train_cfg, test_cfg and the legacy text_repr_type / decoding_type.
        super().__init__()
        if not 0 <= downsample_ratio <= 1:
            raise ConfigError(f"{type(self).__name__}: downsample_ratio must be in [0, 1]")
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.downsample_ratio = downsample_ratio
        self.out_conv = nn.Conv2d(sum(self.in_channels), out_channels, kernel_size=1)

    def forward(self, inputs: Tensor | Sequence[Tensor]) -> Tensor:
        x = torch.cat(tuple(inputs), dim=1) if isinstance(inputs, (tuple, list)) else inputs
        return self.out_conv(x)
