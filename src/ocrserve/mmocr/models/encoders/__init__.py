"""Recognition encoders, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.mmocr.models.encoders import (
    abinet_vision_model,
    channel_reduction_encoder,
    nrtr_encoder,
    sar_encoder,
    satrn_encoder,
)

__all__ = [
    "abinet_vision_model",
    "channel_reduction_encoder",
    "nrtr_encoder",
    "sar_encoder",
    "satrn_encoder",
]
