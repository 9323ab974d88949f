"""MMOCR's ``NRTRDecoder`` (NRTR, SATRN): a transformer decoder, decoded greedily.

The target sequence starts as ``[<BOS>, <PAD> x max_seq_len]``; step ``t`` decodes the whole
sequence (self-attention masked to earlier, non-``<PAD>`` positions; encoder positions past
``ceil(T * valid_ratio)`` masked), takes the softmax of the classifier at position ``t`` and
writes its arg-max at ``t + 1``. Output ``N x max_seq_len x (num_classes - 1)`` probabilities
(no ``<PAD>`` class).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import DECODERS
from ocrserve.mmocr.models.encoders.nrtr_encoder import sequence_mask
from ocrserve.mmocr.models.transformer_layers import PositionalEncoding, TFDecoderLayer

__all__ = ["NRTRDecoder"]


@DECODERS.register("NRTRDecoder")
class NRTRDecoder(nn.Module):
    """``trg_word_emb``, ``position_enc``, ``layer_stack``, ``layer_norm``, ``classifier``."""

    def __init__(
        self,
        n_layers: int = 6,
        d_embedding: int = 512,
        n_head: int = 8,
        d_k: int = 64,
        d_v: int = 64,
        d_model: int = 512,
        d_inner: int = 256,
        n_position: int = 200,
        dropout: float = 0.1,
        num_classes: int = 93,
        max_seq_len: int = 40,
        start_idx: int = 1,
        padding_idx: int = 92,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.padding_idx = padding_idx
        self.start_idx = start_idx
        self.max_seq_len = max_seq_len
        self.trg_word_emb = nn.Embedding(num_classes, d_embedding, padding_idx=padding_idx)
        self.position_enc = PositionalEncoding(d_embedding, n_position=n_position)
        self.layer_stack = nn.ModuleList(
            TFDecoderLayer(d_model, d_inner, n_head, d_k, d_v, dropout=dropout, **kwargs)
            for _ in range(n_layers)
        )
        self.layer_norm = nn.LayerNorm(d_model, eps=1e-6)
        self.classifier = nn.Linear(d_model, num_classes - 1)

    def _attention(self, trg_seq: Tensor, src: Tensor, src_mask: Tensor | None) -> Tensor:
        tgt = self.position_enc(self.trg_word_emb(trg_seq))
        length = trg_seq.size(1)
        causal = 1 - torch.triu(torch.ones((length, length), device=trg_seq.device), diagonal=1)
        trg_mask = (trg_seq != self.padding_idx).unsqueeze(-2) & causal.unsqueeze(0).bool()
        out = tgt
        for layer in self.layer_stack:
            out = layer(out, src, self_attn_mask=trg_mask, dec_enc_attn_mask=src_mask)
        return self.layer_norm(out)

    def forward(
        self,
        feat: Tensor | None,
        out_enc: Tensor,
        img_metas: Sequence[Mapping[str, Any]] | None = None,
    ) -> Tensor:
        src_mask = sequence_mask(out_enc, img_metas)
        n = out_enc.size(0)
        seq = torch.full(
            (n, self.max_seq_len + 1), self.padding_idx, device=out_enc.device, dtype=torch.long
        )
        seq[:, 0] = self.start_idx
        outputs = []
        for step in range(self.max_seq_len):
            decoded = self._attention(seq, out_enc, src_mask)
            step_result = F.softmax(self.classifier(decoded[:, step, :]), dim=-1)
            outputs.append(step_result)
            seq[:, step + 1] = torch.max(step_result, dim=-1)[1]
        return torch.stack(outputs, dim=1)
