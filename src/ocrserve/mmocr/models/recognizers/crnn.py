"""MMOCR's ``CRNNNet``: ``VeryDeepVgg`` -> ``CRNNDecoder``, decoded by ``CTCConvertor``."""

from __future__ import annotations

from ocrserve.mmocr.models.builder import MODELS
from ocrserve.mmocr.models.recognizers.encode_decode import EncodeDecodeRecognizer

__all__ = ["CRNNNet"]


@MODELS.register("CRNNNet", ignore=("loss", "train_cfg", "test_cfg"))
class CRNNNet(EncodeDecodeRecognizer):
    """A CTC recognizer (no encoder in MMOCR's configs)."""
