"""Text detectors, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.mmocr.models.detectors import (
    dbnet,
    drrg,
    fcenet,
    mask_rcnn,
    panet,
    psenet,
    textsnake,
)
from ocrserve.mmocr.models.detectors.mask_rcnn import OCRMaskRCNN
from ocrserve.mmocr.models.detectors.single_stage import SingleStageTextDetector

__all__ = [
    "OCRMaskRCNN",
    "SingleStageTextDetector",
    "dbnet",
    "drrg",
    "fcenet",
    "mask_rcnn",
    "panet",
    "psenet",
    "textsnake",
]
