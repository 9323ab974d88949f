"""MMOCR's ``MASTER``: ``ResNet`` with GCA plugins -> ``MasterDecoder`` (no encoder)."""

from __future__ import annotations

from ocrserve.mmocr.models.builder import MODELS
from ocrserve.mmocr.models.recognizers.encode_decode import EncodeDecodeRecognizer

__all__ = ["MASTER"]


@MODELS.register("MASTER", ignore=("loss", "train_cfg", "test_cfg"))
class MASTER(EncodeDecodeRecognizer):
    """Multi-aspect non-local network for scene text recognition
    (https://arxiv.org/abs/1910.02562)."""
