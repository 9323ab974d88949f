"""MMOCR's ``NRTREncoder``: transformer encoder layers over the flattened feature map.

The ``N x C x H x W`` map becomes ``N x HW x C`` (no positional encoding); positions past
``ceil(HW * valid_ratio)`` are masked out of the attention; a final ``layer_norm``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from ocrserve.mmocr.models.builder import ENCODERS
from ocrserve.mmocr.models.transformer_layers import TFEncoderLayer
from ocrserve.mmocr.models.valid_ratio import column_is_valid, valid_ratios

__all__ = ["NRTREncoder", "sequence_mask"]


def sequence_mask(seq: Tensor, img_metas: Sequence[Mapping[str, Any]] | None) -> Tensor | None:
    """``N x T``: 1 for the first ``ceil(T * valid_ratio)`` steps of each sequence, else 0."""
    ratios = valid_ratios(img_metas, like=seq)
    if ratios is None:
        return None
    return column_is_valid(seq.size(1), ratios).to(seq.dtype)


@ENCODERS.register("NRTREncoder")
class NRTREncoder(nn.Module):
    """``layer_stack`` of `TFEncoderLayer` and ``layer_norm``."""

    def __init__(
        self,
        n_layers: int = 6,
        n_head: int = 8,
        d_k: int = 64,
        d_v: int = 64,
        d_model: int = 512,
        d_inner: int = 256,
        dropout: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.layer_stack = nn.ModuleList(
            TFEncoderLayer(d_model, d_inner, n_head, d_k, d_v, dropout=dropout, **kwargs)
            for _ in range(n_layers)
        )
        self.layer_norm = nn.LayerNorm(d_model)

    def forward(self, feat: Tensor, img_metas: Sequence[Mapping[str, Any]] | None = None) -> Tensor:
        n, c, h, w = feat.size()
        out = feat.view(n, c, h * w).permute(0, 2, 1).contiguous()
        mask = sequence_mask(out, img_metas)
        for layer in self.layer_stack:
            out = layer(out, mask)
        return self.layer_norm(out)
