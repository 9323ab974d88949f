"""Document code: rendering, text layers, reading order, orientation, output writers."""

from __future__ import annotations

from ocrserve.documents.text_layer import TextLayer, read_text_layer

__all__ = ["TextLayer", "read_text_layer"]
