"""Text detectors, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.models.detectors import dbnet, fcenet, panet, psenet, textsnake
from ocrserve.models.detectors.base import SingleStageTextDetector

__all__ = ["SingleStageTextDetector", "dbnet", "fcenet", "panet", "psenet", "textsnake"]
