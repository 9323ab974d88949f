"""Recognition decoders, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.models.decoders import crnn_decoder

__all__ = ["crnn_decoder"]
