"""Text detectors, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.mmocr.models.detectors import dbnet, fcenet, panet, psenet, textsnake
from ocrserve.mmocr.models.detectors.single_stage import SingleStageTextDetector

__all__ = ["SingleStageTextDetector", "dbnet", "fcenet", "panet", "psenet", "textsnake"]
