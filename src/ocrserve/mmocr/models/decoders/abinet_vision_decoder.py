"""MMOCR's ``ABIVisionDecoder``: position attention of ABINet's vision model.

Keys come from a small U-Net over the feature map (``k_encoder``: four strided ``ConvModule``;
``k_decoder``: upsampling + ``ConvModule``, with skip connections; the last resizes to
``attn_height x attn_width``); queries are the projected positional encodings of
``max_seq_len`` positions; values the feature map itself. Returns ``feature`` (``N x T x E``),
``logits`` (``N x T x num_chars``) and ``attn_scores`` (``N x T x H x W``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import DECODERS
from ocrserve.mmocr.models.layers import ConvModule
from ocrserve.mmocr.models.transformer_layers import PositionalEncoding

__all__ = ["ABIVisionDecoder"]

_BN = {"type": "BN"}
_RELU = {"type": "ReLU"}


def _encoder_layer(c_in: int, c_out: int, stride: tuple[int, int]) -> ConvModule:
    return ConvModule(c_in, c_out, 3, stride, 1, norm_cfg=_BN, act_cfg=_RELU)


def _decoder_layer(
    c_in: int,
    c_out: int,
    mode: str,
    scale_factor: int | None = None,
    size: tuple[int, int] | None = None,
) -> nn.Sequential:
    align_corners = None if mode == "nearest" else True
    return nn.Sequential(
        nn.Upsample(size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners),
        ConvModule(c_in, c_out, 3, 1, 1, norm_cfg=_BN, act_cfg=_RELU),
    )


@DECODERS.register("ABIVisionDecoder")
class ABIVisionDecoder(nn.Module):
    """``k_encoder``, ``k_decoder``, ``pos_encoder``, ``project``, ``cls``."""

    def __init__(
        self,
        in_channels: int = 512,
        num_channels: int = 64,
        attn_height: int = 8,
        attn_width: int = 32,
        attn_mode: str = "nearest",
        max_seq_len: int = 40,
        num_chars: int = 90,
        **kwargs: Any,
    ) -> None:
        # Takes and ignores use_result, start_idx, padding_idx, num_classes, as MMOCR's does.
        super().__init__()
        self.max_seq_len = max_seq_len
        self.k_encoder = nn.Sequential(
            _encoder_layer(in_channels, num_channels, (1, 2)),
            _encoder_layer(num_channels, num_channels, (2, 2)),
            _encoder_layer(num_channels, num_channels, (2, 2)),
            _encoder_layer(num_channels, num_channels, (2, 2)),
        )
        self.k_decoder = nn.Sequential(
            _decoder_layer(num_channels, num_channels, attn_mode, scale_factor=2),
            _decoder_layer(num_channels, num_channels, attn_mode, scale_factor=2),
            _decoder_layer(num_channels, num_channels, attn_mode, scale_factor=2),
            _decoder_layer(num_channels, in_channels, attn_mode, size=(attn_height, attn_width)),
        )
        self.pos_encoder = PositionalEncoding(in_channels, max_seq_len)
        self.project = nn.Linear(in_channels, in_channels)
        self.cls = nn.Linear(in_channels, num_chars)

    def forward(
        self,
        feat: Tensor,
        out_enc: Tensor | None = None,
        img_metas: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Tensor]:
        n, e, h, w = feat.size()
        k = feat
        skips = []
        for layer in self.k_encoder:
            k = layer(k)
            skips.append(k)
        for i in range(len(self.k_decoder) - 1):
            k = self.k_decoder[i](k) + skips[len(self.k_decoder) - 2 - i]
        k = self.k_decoder[-1](k)
        q = self.project(self.pos_encoder(feat.new_zeros((n, self.max_seq_len, e))))
        scores = torch.softmax(torch.bmm(q, k.flatten(2, 3)) / e**0.5, dim=-1)
        values = feat.permute(0, 2, 3, 1).view(n, -1, e)
        vecs = torch.bmm(scores, values)
        return {"feature": vecs, "logits": self.cls(vecs), "attn_scores": scores.view(n, -1, h, w)}
