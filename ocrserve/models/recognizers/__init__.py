"""Text recognizers, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.models.recognizers import crnn
from ocrserve.models.recognizers.base import EncodeDecodeRecognizer

__all__ = ["EncodeDecodeRecognizer", "crnn"]
