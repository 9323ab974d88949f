"""MMOCR's ``CRNNDecoder``: two bidirectional LSTMs (``rnn_flag=True``) or a 1x1 conv over the
height-1 feature map, giving per-column class logits ``N x W x num_classes`` (before softmax).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from ocrserve.mmocr.models.builder import DECODERS

__all__ = ["BidirectionalLSTM", "CRNNDecoder"]


class BidirectionalLSTM(nn.Module):
    """A bidirectional LSTM over ``T x N x C``, then a linear layer (``rnn``, ``embedding``)."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(n_in, n_hidden, bidirectional=True)
        self.embedding = nn.Linear(n_hidden * 2, n_out)

    def forward(self, x: Tensor) -> Tensor:
        recurrent, _ = self.rnn(x)
        steps, batch, hidden = recurrent.size()
        out = self.embedding(recurrent.view(steps * batch, hidden))
        return out.view(steps, batch, -1)


@DECODERS.register("CRNNDecoder")
class CRNNDecoder(nn.Module):
    """Column-wise classifier for CTC decoding."""

    def __init__(
        self, in_channels: int, num_classes: int, rnn_flag: bool = False, **kwargs: Any
    ) -> None:
        # Like MMOCR's, takes and ignores other keywords (start_idx, padding_idx, max_seq_len).
        super().__init__()
        self.num_classes = num_classes
        self.rnn_flag = rnn_flag
        self.decoder: nn.Module
        if rnn_flag:
            self.decoder = nn.Sequential(
                BidirectionalLSTM(in_channels, 256, 256),
                BidirectionalLSTM(256, 256, num_classes),
            )
        else:
            self.decoder = nn.Conv2d(in_channels, num_classes, kernel_size=1, stride=1)

    def forward(
        self, feat: Tensor, out_enc: Tensor | None, img_metas: Sequence[Mapping[str, Any]]
    ) -> Tensor:
        if feat.size(2) != 1:
            raise ValueError(f"CRNNDecoder needs a feature map of height 1, got {feat.size(2)}")
        if self.rnn_flag:
            x = self.decoder(feat.squeeze(2).permute(2, 0, 1))  # W x N x C
            return x.permute(1, 0, 2).contiguous()
        x = self.decoder(feat).permute(0, 3, 1, 2).contiguous()
        n, w, c, h = x.size()
        return x.view(n, w, c * h)
