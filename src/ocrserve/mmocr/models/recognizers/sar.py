"""MMOCR's ``SARNet``: ``ResNet31OCR`` -> ``SAREncoder`` -> ``ParallelSARDecoder``."""

from __future__ import annotations

from ocrserve.mmocr.models.builder import MODELS
from ocrserve.mmocr.models.recognizers.encode_decode import EncodeDecodeRecognizer

__all__ = ["SARNet"]


@MODELS.register("SARNet", ignore=("loss", "train_cfg", "test_cfg"))
class SARNet(EncodeDecodeRecognizer):
    """Show, Attend and Read (https://arxiv.org/abs/1811.00751), decoded by ``AttnConvertor``."""
