"""MMOCR's ``RobustScannerDecoder``: a hybrid (sequence) branch and a position branch, fused.

Per step ``i``: the hybrid branch's glimpse given the characters decoded so far, and the position
branch's glimpse for position ``i`` (computed once for all positions), are concatenated, go
through ``fusion_module`` (linear + GLU) and ``prediction``; the softmax's arg-max is written at
``i + 1``. Output ``N x max_seq_len x (num_classes - 1)`` probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import DECODERS
from ocrserve.mmocr.models.decoders.attention_decoders import (
    PositionAttentionDecoder,
    SequenceAttentionDecoder,
)

__all__ = ["RobustScannerDecoder", "RobustScannerFusionLayer"]


class RobustScannerFusionLayer(nn.Module):
    """``glu(linear_layer([x0, x1]))``."""

    def __init__(self, dim_model: int, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim
        self.linear_layer = nn.Linear(dim_model * 2, dim_model * 2)
        self.glu_layer = nn.GLU(dim=dim)

    def forward(self, x0: Tensor, x1: Tensor) -> Tensor:
        return self.glu_layer(self.linear_layer(torch.cat([x0, x1], self.dim)))


@DECODERS.register("RobustScannerDecoder")
class RobustScannerDecoder(nn.Module):
    """``hybrid_decoder``, ``position_decoder``, ``fusion_module``, ``prediction``."""

    def __init__(
        self,
        num_classes: int = 93,
        dim_input: int = 512,
        dim_model: int = 128,
        max_seq_len: int = 40,
        start_idx: int = 0,
        mask: bool = True,
        padding_idx: int | None = None,
        encode_value: bool = False,
        hybrid_decoder: Mapping[str, Any] | None = None,
        position_decoder: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.max_seq_len = max_seq_len
        self.start_idx = start_idx
        shared = {
            "num_classes": num_classes,
            "dim_input": dim_input,
            "dim_model": dim_model,
            "max_seq_len": max_seq_len,
            "mask": mask,
            "encode_value": encode_value,
            "return_feature": True,
        }
        hybrid = DECODERS.build(
            hybrid_decoder or {"type": "SequenceAttentionDecoder"},
            **shared,
            start_idx=start_idx,
            padding_idx=padding_idx,
        )
        position = DECODERS.build(
            position_decoder or {"type": "PositionAttentionDecoder"}, **shared
        )
        if not isinstance(hybrid, SequenceAttentionDecoder) or not isinstance(
            position, PositionAttentionDecoder
        ):
            raise TypeError("RobustScannerDecoder needs sequence and position attention decoders")
        self.hybrid_decoder = hybrid
        self.position_decoder = position
        width = dim_model if encode_value else dim_input
        self.fusion_module = RobustScannerFusionLayer(width)
        self.prediction = nn.Linear(width, num_classes - 1)

    def forward(
        self,
        feat: Tensor,
        out_enc: Tensor,
        img_metas: Sequence[Mapping[str, Any]] | None = None,
    ) -> Tensor:
        seq_len = self.max_seq_len
        sequence = (feat.new_ones((feat.size(0), seq_len)) * self.start_idx).long()
        position_glimpse = self.position_decoder(feat, out_enc, img_metas)
        outputs = []
        for i in range(seq_len):
            hybrid_glimpse = self.hybrid_decoder.forward_step(feat, out_enc, sequence, i, img_metas)
            fused = self.fusion_module(hybrid_glimpse, position_glimpse[:, i, :])
            char_out = F.softmax(self.prediction(fused), -1)
            outputs.append(char_out)
            if i < seq_len - 1:
                sequence[:, i + 1] = torch.max(char_out, dim=1, keepdim=False)[1]
        return torch.stack(outputs, 1)
