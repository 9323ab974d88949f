"""MMOCR's ``SequentialSARDecoder``: SAR's 2D-attention decoder run one step at a time.

Two ``LSTMCell`` (or ``GRUCell``) layers are primed with the holistic feature, then each of the
``max_seq_len`` steps feeds the embedding of the previous arg-max (``<BOS>`` first), attends
(additive, ``tanh``, 1x1 and 3x3 convolutions) over the feature map with the columns past
``ceil(W * valid_ratio)`` masked, and predicts one position (softmax over all classes but
``<PAD>``). Output: ``N x max_seq_len x (num_classes - 1)`` probabilities.

MMOCR 0.6.3's ``_2d_attention`` hands back the LSTM hidden states in place of the cell states
(``return y, hx1, hx1, hx2, hx2``), so from the second step on each cell starts from its own
previous hidden state; that is kept, since the checkpoints were trained and tested with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import DECODERS
from ocrserve.mmocr.models.valid_ratio import column_is_valid, valid_ratios

__all__ = ["SequentialSARDecoder"]


def _lstm_step(cell: nn.Module, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """One ``nn.LSTMCell`` step, written out as ATen's CPU ``lstm_cell`` computes it (the same
    operations in the same order, so the same numbers): the ONNX exporter cannot convert the
    cell's own op when the batch size is dynamic (``unsafe_chunk, unknown dimension size``)."""
    assert isinstance(cell, nn.LSTMCell)
    size = cell.hidden_size
    gates = F.linear(h, cell.weight_hh, cell.bias_hh) + F.linear(x, cell.weight_ih, cell.bias_ih)
    in_gate = torch.sigmoid(gates[:, :size])
    forget_gate = torch.sigmoid(gates[:, size : 2 * size])
    cell_gate = torch.tanh(gates[:, 2 * size : 3 * size])
    out_gate = torch.sigmoid(gates[:, 3 * size :])
    c = forget_gate * c + in_gate * cell_gate
    return out_gate * torch.tanh(c), c


@DECODERS.register("SequentialSARDecoder")
class SequentialSARDecoder(nn.Module):
    """SAR's sequential decoder (``conv1x1_1``, ``conv3x3_1``, ``conv1x1_2``,
    ``rnn_decoder_layer1``, ``rnn_decoder_layer2``, ``embedding``, ``prediction``)."""

    def __init__(
        self,
        num_classes: int = 37,
        enc_bi_rnn: bool = False,
        dec_bi_rnn: bool = False,
        dec_gru: bool = False,
        d_k: int = 64,
        d_model: int = 512,
        d_enc: int = 512,
        pred_dropout: float = 0.0,
        mask: bool = True,
        max_seq_len: int = 40,
        start_idx: int = 0,
        padding_idx: int = 92,
        pred_concat: bool = False,
        **kwargs: Any,
    ) -> None:
        # Takes and ignores dec_do_rnn, init_cfg, as MMOCR's does.
        super().__init__()
        self.num_classes = num_classes
        self.start_idx = start_idx
        self.max_seq_len = max_seq_len
        self.mask = mask
        self.pred_concat = pred_concat
        self.dec_gru = dec_gru
        enc_size = d_enc * (int(enc_bi_rnn) + 1)
        dec_size = enc_size * (int(dec_bi_rnn) + 1)
        self.conv1x1_1 = nn.Conv2d(dec_size, d_k, kernel_size=1, stride=1)
        self.conv3x3_1 = nn.Conv2d(d_model, d_k, kernel_size=3, stride=1, padding=1)
        self.conv1x1_2 = nn.Conv2d(d_k, 1, kernel_size=1, stride=1)
        cell = nn.GRUCell if dec_gru else nn.LSTMCell
        self.rnn_decoder_layer1 = cell(enc_size, enc_size)
        self.rnn_decoder_layer2 = cell(enc_size, enc_size)
        self.embedding = nn.Embedding(num_classes, enc_size, padding_idx=padding_idx)
        self.pred_dropout = nn.Dropout(pred_dropout)
        fc_in = dec_size + d_model + d_enc if pred_concat else d_model
        self.prediction = nn.Linear(fc_in, num_classes - 1)

    def _cells(
        self, x: Tensor, state: tuple[Tensor, Tensor, Tensor, Tensor] | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Both recurrent layers, one step: ``(hx1, cx1, hx2, cx2)``."""
        if self.dec_gru:
            hx1 = self.rnn_decoder_layer1(x, None if state is None else state[0])
            hx2 = self.rnn_decoder_layer2(hx1, None if state is None else state[2])
            return hx1, hx1, hx2, hx2
        if state is None:
            zeros = x.new_zeros(x.size(0), self.rnn_decoder_layer1.hidden_size)
            state = (zeros, zeros, zeros, zeros)
        hx1, cx1 = _lstm_step(self.rnn_decoder_layer1, x, state[0], state[1])
        hx2, cx2 = _lstm_step(self.rnn_decoder_layer2, hx1, state[2], state[3])
        return hx1, cx1, hx2, cx2

    def _2d_attention(
        self, hx2: Tensor, feat: Tensor, holistic: Tensor, padding: Tensor | None
    ) -> Tensor:
        h, w = feat.shape[2:]
        query = self.conv1x1_1(hx2.view(hx2.size(0), hx2.size(1), 1, 1)).expand(-1, -1, h, w)
        weight = self.conv1x1_2(torch.tanh(torch.add(self.conv3x3_1(feat), query, alpha=1)))
        bsz, c, h, w = weight.size()
        if padding is not None:
            weight = weight.masked_fill(padding[:, None, None, :], float("-inf"))
        weight = F.softmax(weight.view(bsz, -1), dim=-1).view(bsz, c, h, w)
        attn_feat = torch.sum(torch.mul(feat, weight), (2, 3), keepdim=False)
        if self.pred_concat:
            return self.prediction(torch.cat((hx2, attn_feat, holistic), 1))
        return self.prediction(attn_feat)

    def forward(
        self, feat: Tensor, out_enc: Tensor, img_metas: Sequence[Mapping[str, Any]] | None = None
    ) -> Tensor:
        ratios = valid_ratios(img_metas, self.mask, like=feat)
        padding = None if ratios is None else ~column_is_valid(feat.size(3), ratios)
        start = torch.full((feat.size(0),), self.start_idx, device=feat.device, dtype=torch.long)
        y_prev = self.embedding(start)
        state = self._cells(out_enc, None)
        outputs = []
        for _ in range(self.max_seq_len):
            hx1, _, hx2, _ = self._cells(y_prev, state)
            # MMOCR 0.6.3 carries the hidden states on as the cell states (see the docstring).
            state = (hx1, hx1, hx2, hx2)
            y = F.softmax(self._2d_attention(hx2, feat, out_enc, padding), -1)
            outputs.append(y)
            y_prev = self.embedding(torch.max(y, dim=1, keepdim=False)[1])
        return torch.stack(outputs, 1)
