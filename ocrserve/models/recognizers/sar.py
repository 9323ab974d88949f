"""MMOCR's ``SARNet``: ``ResNet31OCR`` -> ``SAREncoder`` -> ``ParallelSARDecoder``."""

from __future__ import annotations

from ocrserve.models.recognizers.base import EncodeDecodeRecognizer
from ocrserve.models.registry import MODELS

__all__ = ["SARNet"]


@MODELS.register("SARNet", ignore=("loss", "train_cfg", "test_cfg"))
class SARNet(EncodeDecodeRecognizer):
    """Show, Attend and Read (https://arxiv.org/abs/1811.00751), decoded by ``AttnConvertor``."""
