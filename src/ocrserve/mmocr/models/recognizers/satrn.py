"""MMOCR's ``SATRN``: ``ShallowCNN`` -> ``SatrnEncoder`` -> ``NRTRDecoder``."""

from __future__ import annotations

from ocrserve.mmocr.models.builder import MODELS
from ocrserve.mmocr.models.recognizers.encode_decode import EncodeDecodeRecognizer

__all__ = ["SATRN"]


@MODELS.register("SATRN", ignore=("loss", "train_cfg", "test_cfg"))
class SATRN(EncodeDecodeRecognizer):
    """Self-attention text recognition network (https://arxiv.org/abs/1910.04396)."""
