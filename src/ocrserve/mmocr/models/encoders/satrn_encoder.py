"""MMOCR's ``SatrnEncoder``: adaptive 2D positional encoding, then self-attention layers whose
feed-forward part is convolutional (locality-aware).

Compatibility quirk kept on purpose: MMOCR adds the positional encoding *in place* to a map that
already contains the input (``feat += position_enc(feat)``, and ``position_enc`` returns
``feat + encodings``), so the layers see ``2 * feat + encodings`` and the backbone's output
tensor itself is overwritten with it. Keys past ``ceil(W * valid_ratio)`` columns are masked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import ENCODERS
from ocrserve.mmocr.models.layers import ConvModule
from ocrserve.mmocr.models.transformer_layers import MultiHeadAttention, sinusoid_table
from ocrserve.mmocr.models.valid_ratio import column_is_valid, valid_ratios

__all__ = [
    "Adaptive2DPositionalEncoding",
    "LocalityAwareFeedforward",
    "SatrnEncoder",
    "SatrnEncoderLayer",
]


class LocalityAwareFeedforward(nn.Module):
    """1x1, depth-wise 3x3, 1x1 ``ConvModule`` (BN, ReLU each)."""

    def __init__(self, d_in: int, d_hid: int) -> None:
        super().__init__()
        bn, relu = {"type": "BN"}, {"type": "ReLU"}
        self.conv1 = ConvModule(d_in, d_hid, 1, padding=0, bias=False, norm_cfg=bn, act_cfg=relu)
        self.depthwise_conv = ConvModule(
            d_hid, d_hid, 3, padding=1, bias=False, groups=d_hid, norm_cfg=bn, act_cfg=relu
        )
        self.conv2 = ConvModule(d_hid, d_in, 1, padding=0, bias=False, norm_cfg=bn, act_cfg=relu)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.depthwise_conv(self.conv1(x)))


class SatrnEncoderLayer(nn.Module):
    """Pre-norm self-attention (``norm1``, ``attn``) and feed-forward (``norm2``,
    ``feed_forward``) over the ``h x w`` map."""

    def __init__(
        self,
        d_model: int = 512,
        d_inner: int = 512,
        n_head: int = 8,
        d_k: int = 64,
        d_v: int = 64,
        dropout: float = 0.1,
        qkv_bias: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(n_head, d_model, d_k, d_v, dropout, qkv_bias)
        self.norm2 = nn.LayerNorm(d_model)
        self.feed_forward = LocalityAwareFeedforward(d_model, d_inner)

    def forward(self, x: Tensor, h: int, w: int, mask: Tensor | None = None) -> Tensor:
        n, hw, c = x.size()
        y = self.norm1(x)
        x = x + self.attn(y, y, y, mask)
        y = self.norm2(x).transpose(1, 2).contiguous().view(n, c, h, w)
        y = self.feed_forward(y).view(n, c, hw).transpose(1, 2)
        return x + y


def _scale_factor(d_hid: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(d_hid, d_hid, kernel_size=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(d_hid, d_hid, kernel_size=1),
        nn.Sigmoid(),
    )


class Adaptive2DPositionalEncoding(nn.Module):
    """``x + h_scale(avg(x)) * PE_h + w_scale(avg(x)) * PE_w`` (sinusoid tables as buffers)."""

    def __init__(self, d_hid: int = 512, n_height: int = 100, n_width: int = 100) -> None:
        super().__init__()
        h_table = sinusoid_table(n_height, d_hid).transpose(0, 1).reshape(1, d_hid, n_height, 1)
        w_table = sinusoid_table(n_width, d_hid).transpose(0, 1).reshape(1, d_hid, 1, n_width)
        self.register_buffer("h_position_encoder", h_table)
        self.register_buffer("w_position_encoder", w_table)
        self.h_scale = _scale_factor(d_hid)
        self.w_scale = _scale_factor(d_hid)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        _, _, h, w = x.size()
        avg = self.pool(x)
        h_table = self.get_buffer("h_position_encoder")
        w_table = self.get_buffer("w_position_encoder")
        h_enc = self.h_scale(avg) * h_table[:, :, :h, :]
        w_enc = self.w_scale(avg) * w_table[:, :, :, :w]
        return x + h_enc + w_enc


@ENCODERS.register("SatrnEncoder")
class SatrnEncoder(nn.Module):
    """``position_enc``, ``layer_stack`` of `SatrnEncoderLayer`, ``layer_norm``."""

    def __init__(
        self,
        n_layers: int = 12,
        n_head: int = 8,
        d_k: int = 64,
        d_v: int = 64,
        d_model: int = 512,
        n_position: int = 100,
        d_inner: int = 256,
        dropout: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.position_enc = Adaptive2DPositionalEncoding(d_model, n_position, n_position)
        self.layer_stack = nn.ModuleList(
            SatrnEncoderLayer(d_model, d_inner, n_head, d_k, d_v, dropout=dropout)
            for _ in range(n_layers)
        )
        self.layer_norm = nn.LayerNorm(d_model)

    def forward(self, feat: Tensor, img_metas: Sequence[Mapping[str, Any]] | None = None) -> Tensor:
        ratios = valid_ratios(img_metas, like=feat)
        feat += self.position_enc(feat)
        n, c, h, w = feat.size()
        if ratios is None:
            ratios = feat.new_ones((n,), dtype=torch.float64)
        valid = column_is_valid(w, ratios)[:, None, :].expand(n, h, w)
        mask = valid.reshape(n, h * w).to(feat.dtype)
        out = feat.view(n, c, h * w).permute(0, 2, 1).contiguous()
        for layer in self.layer_stack:
            out = layer(out, h, w, mask)
        return self.layer_norm(out)
