"""ABINet's vision model: MMOCR's ``TransformerEncoder`` and ``ABIVisionModel``.

``TransformerEncoder`` adds a sinusoidal encoding to the flattened map and runs post-norm mmcv
transformer layers (``transformer.N``; ``self_attn, norm, ffn, norm``) over it, sequence first.
``ABIVisionModel`` is that encoder followed by its ``decoder`` (``ABIVisionDecoder``), returning
the decoder's dict (``feature``, ``logits``, ``attn_scores``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from ocrserve.mmocr.models.builder import DECODERS, ENCODERS
from ocrserve.mmocr.models.transformer_layers import MMCVTransformerLayer, PositionalEncoding

__all__ = ["ABIVisionModel", "TransformerEncoder"]

_POST_NORM = ("self_attn", "norm", "ffn", "norm")


@ENCODERS.register("TransformerEncoder")
class TransformerEncoder(nn.Module):
    """``pos_encoder`` and ``transformer`` (a list of mmcv transformer layers)."""

    def __init__(
        self,
        n_layers: int = 2,
        n_head: int = 8,
        d_model: int = 512,
        d_inner: int = 2048,
        dropout: float = 0.1,
        max_len: int = 8 * 32,
    ) -> None:
        super().__init__()
        if d_model % n_head:
            raise ValueError("TransformerEncoder: d_model must be divisible by n_head")
        self.pos_encoder = PositionalEncoding(d_model, n_position=max_len)
        self.transformer = nn.ModuleList(
            MMCVTransformerLayer(_POST_NORM, d_model, n_head, d_inner) for _ in range(n_layers)
        )

    def forward(self, feature: Tensor, img_metas: Any = None) -> Tensor:
        n, c, h, w = feature.shape
        x = self.pos_encoder(feature.view(n, c, -1).transpose(1, 2)).transpose(0, 1)
        for layer in self.transformer:
            x = layer(x)
        return x.permute(1, 2, 0).view(n, c, h, w)


@ENCODERS.register("ABIVisionModel")
class ABIVisionModel(nn.Module):
    """``encoder`` then ``decoder`` (built from their configs)."""

    def __init__(
        self,
        encoder: Mapping[str, Any] | None = None,
        decoder: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.encoder = ENCODERS.build(encoder or {"type": "TransformerEncoder"})
        self.decoder = DECODERS.build(decoder or {"type": "ABIVisionDecoder"})

    def forward(
        self, feat: Tensor, img_metas: Sequence[Mapping[str, Any]] | None = None
    ) -> dict[str, Tensor]:
        out: dict[str, Tensor] = self.decoder(self.encoder(feat), None)
        return out
