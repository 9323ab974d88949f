"""Transformer building blocks named as MMOCR 0.x and mmcv 1.x name them.

- MMOCR's own (``mmocr.models.common``): `MultiHeadAttention` (``linear_q/k/v``, ``fc``), the
  position-wise `PositionwiseFeedForward` (``w_1``, ``w_2``), the sinusoidal `PositionalEncoding`
  (its table is a buffer, saved in checkpoints as ``position_table``), `TFEncoderLayer` and
  `TFDecoderLayer` (pre- or post-norm). NRTR and SATRN use these.
- mmcv's ``BaseTransformerLayer`` as `MMCVTransformerLayer` (``attentions.N.attn`` is a
  ``torch.nn.MultiheadAttention``, ``ffns.N.layers``, ``norms.N``), used by ABINet's encoder and
  MASTER's decoder. ``nn.MultiheadAttention`` is called exactly as mmcv calls it (sequence-first,
  weights requested), which keeps PyTorch on the same kernels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.errors import ConfigError

__all__ = [
    "MMCVTransformerLayer",
    "MultiHeadAttention",
    "PositionalEncoding",
    "PositionwiseFeedForward",
    "TFDecoderLayer",
    "TFEncoderLayer",
    "build_activation",
    "sinusoid_table",
]

GELU: Mapping[str, Any] = {"type": "mmcv.GELU"}


def build_activation(cfg: Mapping[str, Any]) -> nn.Module:
    """An activation by mmcv type name (``GELU`` is PyTorch's exact, erf-based GELU)."""
    kind = str(cfg.get("type", "")).removeprefix("mmcv.")
    if kind == "GELU":
        return nn.GELU()
    if kind in ("ReLU", "Relu"):
        return nn.ReLU(inplace=bool(cfg.get("inplace", False)))
    raise ConfigError(f"Unsupported activation type {cfg.get('type')!r}; supported: GELU, ReLU")


def sinusoid_table(n_position: int, d_hid: int) -> Tensor:
    """``n_position x d_hid``: sin on even, cos on odd channels, frequencies as MMOCR's float32."""
    denominator = torch.Tensor(
        [1.0 / np.power(10000, 2 * (j // 2) / d_hid) for j in range(d_hid)]
    ).view(1, -1)
    table = torch.arange(n_position).unsqueeze(-1).float() * denominator
    table[:, 0::2] = torch.sin(table[:, 0::2])
    table[:, 1::2] = torch.cos(table[:, 1::2])
    return table


class PositionalEncoding(nn.Module):
    """Adds the sinusoid table's first ``T`` rows to ``N x T x D`` input."""

    def __init__(self, d_hid: int = 512, n_position: int = 200, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        self.register_buffer("position_table", sinusoid_table(n_position, d_hid).unsqueeze(0))

    def forward(self, x: Tensor) -> Tensor:
        table = self.get_buffer("position_table")
        return self.dropout(x + table[:, : x.size(1)].clone().detach())


class MultiHeadAttention(nn.Module):
    """MMOCR's multi-head scaled dot-product attention; ``mask`` 0 entries are excluded."""

    def __init__(
        self,
        n_head: int = 8,
        d_model: int = 512,
        d_k: int = 64,
        d_v: int = 64,
        dropout: float = 0.1,
        qkv_bias: bool = False,
    ) -> None:
        super().__init__()
        self.n_head = n_head
        self.d_k = d_k
        self.d_v = d_v
        self.dim_k = n_head * d_k
        self.dim_v = n_head * d_v
        self.temperature = d_k**0.5
        self.linear_q = nn.Linear(self.dim_k, self.dim_k, bias=qkv_bias)
        self.linear_k = nn.Linear(self.dim_k, self.dim_k, bias=qkv_bias)
        self.linear_v = nn.Linear(self.dim_v, self.dim_v, bias=qkv_bias)
        self.fc = nn.Linear(self.dim_v, d_model, bias=qkv_bias)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        batch, len_q, _ = q.size()
        len_k = k.size(1)
        q = self.linear_q(q).view(batch, len_q, self.n_head, self.d_k).transpose(1, 2)
        k = self.linear_k(k).view(batch, len_k, self.n_head, self.d_k).transpose(1, 2)
        v = self.linear_v(v).view(batch, len_k, self.n_head, self.d_v).transpose(1, 2)
        if mask is not None:
            if mask.dim() == 3:
                mask = mask.unsqueeze(1)
            elif mask.dim() == 2:
                mask = mask.unsqueeze(1).unsqueeze(1)
        attn = torch.matmul(q / self.temperature, k.transpose(2, 3))
        if mask is not None:
            attn = attn.masked_fill(mask == 0, float("-inf"))
        out = torch.matmul(F.softmax(attn, dim=-1), v)
        out = out.transpose(1, 2).contiguous().view(batch, len_q, self.dim_v)
        return self.fc(out)


class PositionwiseFeedForward(nn.Module):
    """``w_2(act(w_1(x)))``."""

    def __init__(
        self, d_in: int, d_hid: int, dropout: float = 0.1, act_cfg: Mapping[str, Any] = GELU
    ) -> None:
        super().__init__()
        self.w_1 = nn.Linear(d_in, d_hid)
        self.w_2 = nn.Linear(d_hid, d_in)
        self.act = build_activation(act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        return self.w_2(self.act(self.w_1(x)))


_PRE_ENC = ("norm", "self_attn", "norm", "ffn")
_POST_ENC = ("self_attn", "norm", "ffn", "norm")
_PRE_DEC = ("norm", "self_attn", "norm", "enc_dec_attn", "norm", "ffn")
_POST_DEC = ("self_attn", "norm", "enc_dec_attn", "norm", "ffn", "norm")


def _order(order: Sequence[str] | None, allowed: tuple[tuple[str, ...], ...]) -> tuple[str, ...]:
    chosen = tuple(order) if order is not None else allowed[0]
    if chosen not in allowed:
        raise ConfigError(f"Unsupported operation_order {chosen}; supported: {allowed}")
    return chosen


class TFEncoderLayer(nn.Module):
    """MMOCR's transformer encoder layer (``attn``, ``norm1``, ``mlp``, ``norm2``)."""

    def __init__(
        self,
        d_model: int = 512,
        d_inner: int = 256,
        n_head: int = 8,
        d_k: int = 64,
        d_v: int = 64,
        dropout: float = 0.1,
        qkv_bias: bool = False,
        act_cfg: Mapping[str, Any] = GELU,
        operation_order: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(n_head, d_model, d_k, d_v, dropout, qkv_bias)
        self.norm1 = nn.LayerNorm(d_model)
        self.mlp = PositionwiseFeedForward(d_model, d_inner, dropout, act_cfg)
        self.norm2 = nn.LayerNorm(d_model)
        self.operation_order = _order(operation_order, (_PRE_ENC, _POST_ENC))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.operation_order == _POST_ENC:
            x = self.norm1(x + self.attn(x, x, x, mask))
            return self.norm2(x + self.mlp(x))
        y = self.norm1(x)
        x = x + self.attn(y, y, y, mask)
        return x + self.mlp(self.norm2(x))


class TFDecoderLayer(nn.Module):
    """MMOCR's transformer decoder layer (``self_attn``, ``enc_attn``, ``mlp``, ``norm1..3``)."""

    def __init__(
        self,
        d_model: int = 512,
        d_inner: int = 256,
        n_head: int = 8,
        d_k: int = 64,
        d_v: int = 64,
        dropout: float = 0.1,
        qkv_bias: bool = False,
        act_cfg: Mapping[str, Any] = GELU,
        operation_order: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(n_head, d_model, d_k, d_v, dropout, qkv_bias)
        self.enc_attn = MultiHeadAttention(n_head, d_model, d_k, d_v, dropout, qkv_bias)
        self.mlp = PositionwiseFeedForward(d_model, d_inner, dropout, act_cfg)
        self.operation_order = _order(operation_order, (_PRE_DEC, _POST_DEC))

    def forward(
        self,
        dec_input: Tensor,
        enc_output: Tensor,
        self_attn_mask: Tensor | None = None,
        dec_enc_attn_mask: Tensor | None = None,
    ) -> Tensor:
        if self.operation_order == _POST_DEC:
            x = self.self_attn(dec_input, dec_input, dec_input, self_attn_mask) + dec_input
            x = self.norm1(x)
            y = self.enc_attn(x, enc_output, enc_output, dec_enc_attn_mask) + x
            y = self.norm2(y)
            return self.norm3(self.mlp(y) + y)
        normed = self.norm1(dec_input)
        x = self.self_attn(normed, normed, normed, self_attn_mask) + dec_input
        y = self.enc_attn(self.norm2(x), enc_output, enc_output, dec_enc_attn_mask) + x
        return self.mlp(self.norm3(y)) + y


class _MMCVAttention(nn.Module):
    """mmcv's ``MultiheadAttention`` wrapper: ``attn`` plus the residual (``identity``)."""

    def __init__(self, embed_dims: int, num_heads: int, batch_first: bool) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.attn = nn.MultiheadAttention(embed_dims, num_heads)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        identity: Tensor,
        mask: Tensor | None,
        key_padding_mask: Tensor | None = None,
    ) -> Tensor:
        if self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        out = self.attn(
            query=query, key=key, value=value, attn_mask=mask, key_padding_mask=key_padding_mask
        )[0]
        if self.batch_first:
            out = out.transpose(0, 1)
        return identity + out


class _MMCVFFN(nn.Module):
    """mmcv's ``FFN`` (two layers): ``layers.0.0`` Linear, ReLU, ``layers.1`` Linear; residual."""

    def __init__(self, embed_dims: int, feedforward_channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(
                nn.Linear(embed_dims, feedforward_channels), nn.ReLU(inplace=True), nn.Dropout()
            ),
            nn.Linear(feedforward_channels, embed_dims),
            nn.Dropout(),
        )

    def forward(self, x: Tensor, identity: Tensor | None = None) -> Tensor:
        return (x if identity is None else identity) + self.layers(x)


class MMCVTransformerLayer(nn.Module):
    """mmcv 1.x's ``BaseTransformerLayer`` with ``MultiheadAttention``, ``FFN`` and ``LN``.

    ``operation_order`` over ``self_attn``, ``cross_attn``, ``norm``, ``ffn``; when it starts with
    ``norm`` (pre-norm) the residuals skip the norms, as mmcv's ``identity`` bookkeeping does.
    """

    def __init__(
        self,
        operation_order: Sequence[str],
        embed_dims: int,
        num_heads: int,
        feedforward_channels: int,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        self.operation_order = tuple(operation_order)
        unknown = set(self.operation_order) - {"self_attn", "cross_attn", "norm", "ffn"}
        if unknown:
            raise ConfigError(f"Unsupported transformer operations: {sorted(unknown)}")
        self.pre_norm = self.operation_order[0] == "norm"
        n_attn = sum(op in ("self_attn", "cross_attn") for op in self.operation_order)
        self.attentions = nn.ModuleList(
            _MMCVAttention(embed_dims, num_heads, batch_first) for _ in range(n_attn)
        )
        self.ffns = nn.ModuleList(
            _MMCVFFN(embed_dims, feedforward_channels)
            for _ in range(self.operation_order.count("ffn"))
        )
        self.norms = nn.ModuleList(
            nn.LayerNorm(embed_dims) for _ in range(self.operation_order.count("norm"))
        )

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        attn_masks: Sequence[Tensor | None] | None = None,
        key_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """``key_padding_mask`` (``N x S``, True where a key is padding) applies to the
        ``cross_attn`` operations, as mmcv passes it."""
        masks = list(attn_masks) if attn_masks is not None else [None] * len(self.attentions)
        identity = query
        i_norm = i_attn = i_ffn = 0
        for op in self.operation_order:
            if op == "norm":
                query = self.norms[i_norm](query)
                i_norm += 1
            elif op == "ffn":
                query = self.ffns[i_ffn](query, identity if self.pre_norm else None)
                i_ffn += 1
            else:
                k = query if op == "self_attn" else key
                v = query if op == "self_attn" else value
                assert k is not None and v is not None
                residual = identity if self.pre_norm else query
                padding = key_padding_mask if op == "cross_attn" else None
                query = self.attentions[i_attn](query, k, v, residual, masks[i_attn], padding)
                i_attn += 1
                identity = query
        return query
