"""``ocrserve archive --quantize int8``: ONNX networks quantized, measured against FP32 on the
calibration images, and refused beyond an accuracy budget (docs/archives.md#int8)."""

from __future__ import annotations

from ocrserve.int8.agreement import Agreement
from ocrserve.int8.parts import DEFAULT_BUDGET, Int8Archiver
from ocrserve.int8.quantizer import Int8Settings

__all__ = ["DEFAULT_BUDGET", "Agreement", "Int8Archiver", "Int8Settings"]
