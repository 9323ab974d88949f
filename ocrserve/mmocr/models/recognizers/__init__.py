"""Text recognizers, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.mmocr.models.recognizers import abinet, crnn, master, nrtr, robust_scanner, sar, satrn
from ocrserve.mmocr.models.recognizers.encode_decode import EncodeDecodeRecognizer

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
