"""MMOCR's ``RobustScanner``: ``ResNet31OCR`` -> ``ChannelReductionEncoder`` ->
``RobustScannerDecoder``."""

from __future__ import annotations

from ocrserve.mmocr.models.builder import MODELS
from ocrserve.mmocr.models.recognizers.encode_decode import EncodeDecodeRecognizer

__all__ = ["RobustScanner"]


@MODELS.register("RobustScanner", ignore=("loss", "train_cfg", "test_cfg"))
class RobustScanner(EncodeDecodeRecognizer):
    """RobustScanner (https://arxiv.org/abs/2007.07542): position-enhanced attention decoding."""
