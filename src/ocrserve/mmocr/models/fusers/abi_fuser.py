"""MMOCR's ``ABIFuser``: ABINet's gated blend of the vision and language features.

A sigmoid gate (``w_att`` over both features, concatenated) weighs the two per channel, and
``cls`` classifies the blend into ``N x T x num_chars`` logits.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import FUSERS

__all__ = ["ABIFuser"]


@FUSERS.register("ABIFuser")
class ABIFuser(nn.Module):
    """``w_att`` and ``cls``."""

    def __init__(
        self, d_model: int = 512, max_seq_len: int = 40, num_chars: int = 90, **kwargs: Any
    ) -> None:
        super().__init__()
        self.max_seq_len = max_seq_len + 1  # MMOCR's: counts the stop token; never read
        self.w_att = nn.Linear(2 * d_model, d_model)
        self.cls = nn.Linear(d_model, num_chars)

    def forward(self, vision_feature: Tensor, language_feature: Tensor) -> dict[str, Tensor]:
        """Both ``N x T x E``. MMOCR's ABINet passes the vision feature as the argument its fuser
        calls ``l_feature``, so its gate weighs the language feature: kept, with honest names."""
        gate = torch.sigmoid(self.w_att(torch.cat((vision_feature, language_feature), dim=2)))
        blend = gate * language_feature + (1 - gate) * vision_feature
        return {"logits": self.cls(blend)}
