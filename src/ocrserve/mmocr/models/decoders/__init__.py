"""Recognition decoders, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.mmocr.models.decoders import (
    abinet_language_decoder,
    abinet_vision_decoder,
    attention_decoders,
    crnn_decoder,
    master_decoder,
    nrtr_decoder,
    robust_scanner_decoder,
    sar_decoder,
    sequential_sar_decoder,
)

__all__ = [
    "abinet_language_decoder",
    "abinet_vision_decoder",
    "attention_decoders",
    "crnn_decoder",
    "master_decoder",
    "nrtr_decoder",
    "robust_scanner_decoder",
    "sar_decoder",
    "sequential_sar_decoder",
]
