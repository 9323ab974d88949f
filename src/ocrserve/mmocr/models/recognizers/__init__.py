"""Text recognizers, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.mmocr.models.recognizers import (
    abinet,
    crnn,
    master,
    nrtr,
    robust_scanner,
    sar,
    satrn,
    seg_recognizer,
)
from ocrserve.mmocr.models.recognizers.encode_decode import EncodeDecodeRecognizer
from ocrserve.mmocr.models.recognizers.seg_recognizer import SegRecognizer

__all__ = [
    "EncodeDecodeRecognizer",
    "SegRecognizer",
    "abinet",
    "crnn",
    "master",
    "nrtr",
    "robust_scanner",
    "sar",
    "satrn",
    "seg_recognizer",
]
