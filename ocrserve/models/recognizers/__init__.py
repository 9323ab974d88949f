"""Text recognizers, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.models.recognizers import abinet, crnn, master, nrtr, robust_scanner, sar, satrn
from ocrserve.models.recognizers.base import EncodeDecodeRecognizer

__all__ = [
    "EncodeDecodeRecognizer",
    "abinet",
    "crnn",
    "master",
    "nrtr",
    "robust_scanner",
    "sar",
    "satrn",
]
