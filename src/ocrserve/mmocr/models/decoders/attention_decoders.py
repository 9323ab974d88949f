"""MMOCR's ``SequenceAttentionDecoder`` and ``PositionAttentionDecoder`` (RobustScanner's two
branches, also usable alone).

Both attend with dot products (`dot_product_attention`) from a query per output position to the
encoder output (keys), reading the backbone features (values; the encoder output with
``encode_value``); columns past ``ceil(W * valid_ratio)`` are masked. The sequence branch's query
is an LSTM over the embeddings of the characters decoded so far; the position branch's is a
learned embedding of the position, its keys the encoder output through `PositionAwareLayer`.
With ``return_feature`` they return the attended features (``glimpses``) and have no
``prediction`` layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import DECODERS
from ocrserve.mmocr.models.valid_ratio import column_is_valid, valid_ratios

__all__ = [
    "PositionAttentionDecoder",
    "PositionAwareLayer",
    "SequenceAttentionDecoder",
    "column_mask",
    "dot_product_attention",
]


def column_mask(n: int, h: int, w: int, ratios: Tensor | None) -> Tensor | None:
    """``N x HW`` boolean, True at the columns past each image's valid width."""
    if ratios is None:
        return None
    padding = ~column_is_valid(w, ratios)
    return padding[:, None, :].expand(n, h, w).reshape(n, h * w)


def dot_product_attention(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None) -> Tensor:
    """MMOCR's ``DotProductAttentionLayer`` (scale 1): ``N x C x T`` queries -> ``N x C' x T``."""
    logits = torch.matmul(query.permute(0, 2, 1), key)
    if mask is not None:
        logits = logits.masked_fill(mask.view(mask.size(0), 1, mask.size(1)), float("-inf"))
    weights = F.softmax(logits, dim=2)
    return torch.matmul(weights, value.transpose(1, 2)).permute(0, 2, 1).contiguous()


@DECODERS.register("SequenceAttentionDecoder")
class SequenceAttentionDecoder(nn.Module):
    """``embedding``, ``sequence_layer`` (LSTM) [, ``prediction``]."""

    def __init__(
        self,
        num_classes: int = 93,
        rnn_layers: int = 2,
        dim_input: int = 512,
        dim_model: int = 128,
        max_seq_len: int = 40,
        start_idx: int = 0,
        mask: bool = True,
        padding_idx: int | None = None,
        dropout: float = 0.0,
        return_feature: bool = False,
        encode_value: bool = False,
    ) -> None:
        super().__init__()
        self.dim_input = dim_input
        self.dim_model = dim_model
        self.return_feature = return_feature
        self.encode_value = encode_value
        self.max_seq_len = max_seq_len
        self.start_idx = start_idx
        self.mask = mask
        self.embedding = nn.Embedding(num_classes, dim_model, padding_idx=padding_idx)
        self.sequence_layer = nn.LSTM(
            input_size=dim_model,
            hidden_size=dim_model,
            num_layers=rnn_layers,
            batch_first=True,
            dropout=dropout,
        )
        self.prediction: nn.Linear | None = None
        if not return_feature:
            self.prediction = nn.Linear(dim_model if encode_value else dim_input, num_classes - 1)

    def forward_step(
        self,
        feat: Tensor,
        out_enc: Tensor,
        decode_sequence: Tensor,
        step: int,
        img_metas: Sequence[Mapping[str, Any]] | None,
    ) -> Tensor:
        """The glimpse (or class probabilities) at ``step`` given the sequence decoded so far."""
        n, c_enc, h, w = out_enc.size()
        query = self.sequence_layer(self.embedding(decode_sequence))[0]
        query = query.permute(0, 2, 1).contiguous()
        key = out_enc.view(n, c_enc, h * w)
        value = key if self.encode_value else feat.view(n, feat.size(1), h * w)
        mask = column_mask(n, h, w, valid_ratios(img_metas, self.mask, like=query))
        out = dot_product_attention(query, key, value, mask)[:, :, step]
        if self.prediction is None:
            return out
        return F.softmax(self.prediction(out), dim=-1)

    def forward(
        self,
        feat: Tensor,
        out_enc: Tensor,
        img_metas: Sequence[Mapping[str, Any]] | None = None,
    ) -> Tensor:
        seq_len = self.max_seq_len
        sequence = (feat.new_ones((feat.size(0), seq_len)) * self.start_idx).long()
        outputs = []
        for i in range(seq_len):
            step_out = self.forward_step(feat, out_enc, sequence, i, img_metas)
            outputs.append(step_out)
            if i < seq_len - 1:
                sequence[:, i + 1] = torch.max(step_out, dim=1, keepdim=False)[1]
        return torch.stack(outputs, 1)


class PositionAwareLayer(nn.Module):
    """Row-wise LSTM over the feature map, then two 3x3 convolutions (``rnn``, ``mixer``)."""

    def __init__(self, dim_model: int, rnn_layers: int = 2) -> None:
        super().__init__()
        self.rnn = nn.LSTM(
            input_size=dim_model, hidden_size=dim_model, num_layers=rnn_layers, batch_first=True
        )
        self.mixer = nn.Sequential(
            nn.Conv2d(dim_model, dim_model, kernel_size=3, stride=1, padding=1),
            nn.ReLU(True),
            nn.Conv2d(dim_model, dim_model, kernel_size=3, stride=1, padding=1),
        )

    def forward(self, img_feature: Tensor) -> Tensor:
        n, c, h, w = img_feature.size()
        rows = img_feature.permute(0, 2, 3, 1).contiguous().view(n * h, w, c)
        out = self.rnn(rows)[0].view(n, h, w, c).permute(0, 3, 1, 2).contiguous()
        return self.mixer(out)


@DECODERS.register("PositionAttentionDecoder")
class PositionAttentionDecoder(nn.Module):
    """``embedding`` (of positions), ``position_aware_module`` [, ``prediction``]."""

    def __init__(
        self,
        num_classes: int = 93,
        rnn_layers: int = 2,
        dim_input: int = 512,
        dim_model: int = 128,
        max_seq_len: int = 40,
        mask: bool = True,
        return_feature: bool = False,
        encode_value: bool = False,
        **kwargs: Any,
    ) -> None:
        # Takes and ignores start_idx/padding_idx, which the recognizer passes every decoder.
        super().__init__()
        self.dim_input = dim_input
        self.dim_model = dim_model
        self.max_seq_len = max_seq_len
        self.encode_value = encode_value
        self.mask = mask
        self.embedding = nn.Embedding(max_seq_len + 1, dim_model)
        self.position_aware_module = PositionAwareLayer(dim_model, rnn_layers)
        self.prediction: nn.Linear | None = None
        if not return_feature:
            self.prediction = nn.Linear(dim_model if encode_value else dim_input, num_classes - 1)

    def forward(
        self,
        feat: Tensor,
        out_enc: Tensor,
        img_metas: Sequence[Mapping[str, Any]] | None = None,
    ) -> Tensor:
        n, c_enc, h, w = out_enc.size()
        positions = torch.arange(0, self.max_seq_len, device=feat.device)
        positions = positions.repeat([n, 1]).long()
        key = self.position_aware_module(out_enc).view(n, c_enc, h * w)
        query = self.embedding(positions).permute(0, 2, 1).contiguous()
        if self.encode_value:
            value = out_enc.view(n, c_enc, h * w)
        else:
            value = feat.view(n, feat.size(1), h * w)
        mask = column_mask(n, h, w, valid_ratios(img_metas, self.mask, like=query))
        out = dot_product_attention(query, key, value, mask).permute(0, 2, 1).contiguous()
        return out if self.prediction is None else self.prediction(out)
