"""MMOCR's ``ParallelSARDecoder``: SAR's 2D-attention LSTM decoder, decoded greedily.

The decoder input is ``[holistic feature, <BOS> embedding x max_seq_len]``; step ``i`` runs the
2-layer LSTM over the whole input, attends (additive, ``tanh``) over the feature map with the
columns past ``ceil(W * valid_ratio)`` masked, predicts position ``i`` (softmax over all classes
but ``<PAD>``) and writes the embedding of its arg-max at position ``i + 1``. Re-running the LSTM
over the whole sequence each step is MMOCR's order of operations, kept so the numbers agree.
Output: ``N x max_seq_len x (num_classes - 1)`` probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import DECODERS
from ocrserve.mmocr.models.valid_ratio import column_is_valid, valid_ratios

__all__ = ["ParallelSARDecoder"]


@DECODERS.register("ParallelSARDecoder")
class ParallelSARDecoder(nn.Module):
    """SAR's parallel decoder (``conv1x1_1``, ``conv3x3_1``, ``conv1x1_2``, ``rnn_decoder``,
    ``embedding``, ``prediction``)."""

    def __init__(
        self,
        num_classes: int = 37,
        enc_bi_rnn: bool = False,
        dec_bi_rnn: bool = False,
        dec_do_rnn: float = 0.0,
        dec_gru: bool = False,
        d_model: int = 512,
        d_enc: int = 512,
        d_k: int = 64,
        pred_dropout: float = 0.0,
        max_seq_len: int = 40,
        mask: bool = True,
        start_idx: int = 0,
        padding_idx: int = 92,
        pred_concat: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.start_idx = start_idx
        self.max_seq_len = max_seq_len
        self.mask = mask
        self.pred_concat = pred_concat
        enc_size = d_enc * (int(enc_bi_rnn) + 1)
        dec_size = enc_size * (int(dec_bi_rnn) + 1)
        self.conv1x1_1 = nn.Linear(dec_size, d_k)
        self.conv3x3_1 = nn.Conv2d(d_model, d_k, kernel_size=3, stride=1, padding=1)
        self.conv1x1_2 = nn.Linear(d_k, 1)
        rnn = nn.GRU if dec_gru else nn.LSTM
        self.rnn_decoder = rnn(
            input_size=enc_size,
            hidden_size=enc_size,
            num_layers=2,
            batch_first=True,
            dropout=dec_do_rnn,
            bidirectional=dec_bi_rnn,
        )
        self.embedding = nn.Embedding(num_classes, enc_size, padding_idx=padding_idx)
        fc_in = dec_size + d_model + enc_size if pred_concat else d_model
        self.prediction = nn.Linear(fc_in, num_classes - 1)

    def _2d_attention(
        self, decoder_input: Tensor, feat: Tensor, holistic: Tensor, padding: Tensor | None
    ) -> Tensor:
        y = self.rnn_decoder(decoder_input)[0]
        query = self.conv1x1_1(y)
        bsz, seq_len, attn_size = query.size()
        query = query.view(bsz, seq_len, attn_size, 1, 1)
        key = self.conv3x3_1(feat).unsqueeze(1)
        weight = torch.tanh(torch.add(key, query, alpha=1))
        weight = self.conv1x1_2(weight.permute(0, 1, 3, 4, 2).contiguous())
        bsz, steps, h, w, c = weight.size()
        if padding is not None:
            weight = weight.masked_fill(padding[:, None, None, :, None], float("-inf"))
        weight = F.softmax(weight.view(bsz, steps, -1), dim=-1)
        weight = weight.view(bsz, steps, h, w, c).permute(0, 1, 4, 2, 3).contiguous()
        attn_feat = torch.sum(torch.mul(feat.unsqueeze(1), weight), (3, 4), keepdim=False)
        if self.pred_concat:
            holistic = holistic.expand(bsz, seq_len, holistic.size(-1))
            return self.prediction(torch.cat((y, attn_feat, holistic), 2))
        return self.prediction(attn_feat)

    def forward(
        self, feat: Tensor, out_enc: Tensor, img_metas: Sequence[Mapping[str, Any]] | None = None
    ) -> Tensor:
        ratios = valid_ratios(img_metas, self.mask, like=feat)
        padding = None if ratios is None else ~column_is_valid(feat.size(3), ratios)
        seq_len = self.max_seq_len
        bsz = feat.size(0)
        start = torch.full((bsz,), self.start_idx, device=feat.device, dtype=torch.long)
        start_emb = self.embedding(start).unsqueeze(1).expand(-1, seq_len, -1)
        holistic = out_enc.unsqueeze(1)
        decoder_input = torch.cat((holistic, start_emb), dim=1)
        outputs = []
        for i in range(1, seq_len + 1):
            decoder_output = self._2d_attention(decoder_input, feat, holistic, padding)
            char_output = F.softmax(decoder_output[:, i, :], -1)
            outputs.append(char_output)
            _, max_idx = torch.max(char_output, dim=1, keepdim=False)
            if i < seq_len:
                decoder_input[:, i + 1, :] = self.embedding(max_idx)
        return torch.stack(outputs, 1)
