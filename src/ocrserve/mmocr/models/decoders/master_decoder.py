"""MMOCR's ``MasterDecoder``: pre-norm transformer decoder layers (mmcv's), decoded greedily.

The feature map ``N x C x H x W`` becomes ``N x HW x C`` plus a sinusoidal encoding
(``feat_positional_encoding``). Decoding starts from ``[<BOS>]`` and runs ``max_seq_len`` times,
each time decoding the whole sequence so far (embedding x ``sqrt(d_model)`` + positions; a causal,
``<PAD>``-aware additive mask of -1e9) and appending the arg-max of the last position.
Output: the *logits* of the final pass, ``N x max_seq_len x num_classes`` (MMOCR decodes them
without a softmax, so its scores are logits).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import DECODERS
from ocrserve.mmocr.models.transformer_layers import MMCVTransformerLayer, PositionalEncoding

__all__ = ["Embeddings", "MasterDecoder"]

_ORDER = ("norm", "self_attn", "norm", "cross_attn", "norm", "ffn")


class Embeddings(nn.Module):
    """``lut(x) * sqrt(d_model)``."""

    def __init__(self, d_model: int, vocab: int) -> None:
        super().__init__()
        self.lut = nn.Embedding(vocab, d_model)
        self.d_model = d_model

    def forward(self, x: Tensor) -> Tensor:
        return self.lut(x) * math.sqrt(self.d_model)


@DECODERS.register("MasterDecoder")
class MasterDecoder(nn.Module):
    """``decoder_layers``, ``cls``, ``embedding``, ``positional_encoding``,
    ``feat_positional_encoding``, ``norm``."""

    def __init__(
        self,
        start_idx: int,
        padding_idx: int,
        num_classes: int = 93,
        n_layers: int = 3,
        n_head: int = 8,
        d_model: int = 512,
        feat_size: int = 6 * 40,
        d_inner: int = 2048,
        attn_drop: float = 0.0,
        ffn_drop: float = 0.0,
        feat_pe_drop: float = 0.2,
        max_seq_len: int = 30,
    ) -> None:
        super().__init__()
        self.decoder_layers = nn.ModuleList(
            MMCVTransformerLayer(_ORDER, d_model, n_head, d_inner, batch_first=True)
            for _ in range(n_layers)
        )
        self.cls = nn.Linear(d_model, num_classes)
        self.start_idx = start_idx
        self.padding_idx = padding_idx
        self.max_seq_len = max_seq_len
        self.feat_size = feat_size
        self.n_head = n_head
        self.embedding = Embeddings(d_model=d_model, vocab=num_classes)
        self.positional_encoding = PositionalEncoding(d_model, n_position=max_seq_len + 1)
        self.feat_positional_encoding = PositionalEncoding(d_model, n_position=feat_size)
        self.norm = nn.LayerNorm(d_model)

    def make_mask(self, tgt: Tensor) -> Tensor:
        """``(N * n_head) x L x L``: 0 where a position may attend, -1e9 elsewhere."""
        length = tgt.size(1)
        pad = (tgt != self.padding_idx).unsqueeze(1).unsqueeze(3).bool()
        causal = torch.tril(torch.ones((length, length), dtype=torch.bool, device=tgt.device))
        allowed = pad & causal
        mask = allowed.float().masked_fill_(~allowed, -1000000000.0).masked_fill_(allowed, 0)
        return mask.repeat(1, self.n_head, 1, 1).view(-1, length, length)

    def decode(self, tokens: Tensor, feature: Tensor, tgt_mask: Tensor) -> Tensor:
        x = self.positional_encoding(self.embedding(tokens))
        for layer in self.decoder_layers:
            x = layer(x, feature, feature, attn_masks=[tgt_mask, None])
        return self.cls(self.norm(x))

    def forward(
        self,
        feat: Tensor,
        out_enc: Tensor | None,
        img_metas: Sequence[Mapping[str, Any]] | None = None,
    ) -> Tensor:
        if feat.dim() > 3:
            b, c, h, w = feat.shape
            feat = feat.view(b, c, h * w).permute((0, 2, 1))
        memory = self.feat_positional_encoding(feat) if out_enc is None else out_enc
        tokens = torch.full(
            (memory.shape[0], 1), self.start_idx, dtype=torch.long, device=memory.device
        )
        output = memory.new_zeros((memory.shape[0], 0, self.cls.out_features))
        for _ in range(self.max_seq_len):
            output = self.decode(tokens, memory, self.make_mask(tokens))
            next_word = torch.max(torch.softmax(output, dim=-1), dim=-1)[1]
            tokens = torch.cat([tokens, next_word[:, -1].unsqueeze(-1)], dim=1)
        return output
