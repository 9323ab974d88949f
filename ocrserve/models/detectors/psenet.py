"""MMOCR's ``PSENet`` (Shape Robust Text Detection with Progressive Scale Expansion Network).

Usually ``mmdet.ResNet`` -> ``FPNF`` -> ``PSEHead``; post-processing is ``PSEPostprocessor``.
"""

from __future__ import annotations

from ocrserve.models.detectors.base import SingleStageTextDetector
from ocrserve.models.registry import MODELS

__all__ = ["PSENet"]


@MODELS.register("PSENet", ignore=("train_cfg", "test_cfg", "show_score"))
class PSENet(SingleStageTextDetector):
    """A single-stage detector whose head is a ``PSEHead``."""
