"""MMOCR's ``SAREncoder``: a holistic feature from the column-wise max-pooled feature map.

Max pooling over the height gives a sequence of columns; a 2-layer LSTM (or GRU) runs over it and
the output at the last *valid* column (``ceil(W * valid_ratio) - 1`` with ``mask``) goes through
``linear``. Output ``N x d_enc`` (``2 * d_enc`` bidirectional).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.models.registry import ENCODERS

__all__ = ["SAREncoder", "valid_ratios"]


def valid_ratios(img_metas: Sequence[Mapping[str, Any]] | None, mask: bool) -> list[float] | None:
    """The metas' ``valid_ratio`` (1.0 where absent), or None when masking is off."""
    if img_metas is None or not mask:
        return None
    return [float(meta.get("valid_ratio", 1.0)) for meta in img_metas]


def valid_width(width: int, ratio: float) -> int:
    """How many of ``width`` columns hold the image: ``min(width, ceil(width * ratio))``."""
    return min(width, math.ceil(width * ratio))


@ENCODERS.register("SAREncoder")
class SAREncoder(nn.Module):
    """Holistic feature of SAR (``rnn_encoder``, ``linear``)."""

    def __init__(
        self,
        enc_bi_rnn: bool = False,
        enc_do_rnn: float = 0.0,
        enc_gru: bool = False,
        d_model: int = 512,
        d_enc: int = 512,
        mask: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.mask = mask
        rnn = nn.GRU if enc_gru else nn.LSTM
        self.rnn_encoder = rnn(
            input_size=d_model,
            hidden_size=d_enc,
            num_layers=2,
            batch_first=True,
            dropout=enc_do_rnn,
            bidirectional=enc_bi_rnn,
        )
        out_size = d_enc * (int(enc_bi_rnn) + 1)
        self.linear = nn.Linear(out_size, out_size)

    def forward(self, feat: Tensor, img_metas: Sequence[Mapping[str, Any]] | None = None) -> Tensor:
        ratios = valid_ratios(img_metas, self.mask)
        columns = F.max_pool2d(feat, kernel_size=(feat.size(2), 1), stride=1, padding=0)
        columns = columns.squeeze(2).permute(0, 2, 1).contiguous()
        holistic = self.rnn_encoder(columns)[0]
        if ratios is not None:
            steps = holistic.size(1)
            last = torch.stack(
                [holistic[i, valid_width(steps, r) - 1, :] for i, r in enumerate(ratios)], dim=0
            )
        else:
            last = holistic[:, -1, :]
        return self.linear(last)
