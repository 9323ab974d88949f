"""MMOCR's ``SATRN``: ``ShallowCNN`` -> ``SatrnEncoder`` -> ``NRTRDecoder``."""

from __future__ import annotations

from ocrserve.models.recognizers.base import EncodeDecodeRecognizer
from ocrserve.models.registry import MODELS

__all__ = ["SATRN"]


@MODELS.register("SATRN", ignore=("loss", "train_cfg", "test_cfg"))
class SATRN(EncodeDecodeRecognizer):
    """Self-attention text recognition network (https://arxiv.org/abs/1910.04396)."""
