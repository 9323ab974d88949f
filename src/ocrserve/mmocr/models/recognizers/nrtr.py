"""MMOCR's ``NRTR``: ``ResNet31OCR`` or ``NRTRModalityTransform`` -> ``NRTREncoder`` ->
``NRTRDecoder``."""

from __future__ import annotations

from ocrserve.mmocr.models.builder import MODELS
from ocrserve.mmocr.models.recognizers.encode_decode import EncodeDecodeRecognizer

__all__ = ["NRTR"]


@MODELS.register("NRTR", ignore=("loss", "train_cfg", "test_cfg"))
class NRTR(EncodeDecodeRecognizer):
    """No-recurrence sequence-to-sequence recognizer (https://arxiv.org/abs/1806.00926)."""
