"""MMOCR's ``PSENet`` (Shape Robust Text Detection with Progressive Scale Expansion Network).

Usually ``mmdet.ResNet`` -> ``FPNF`` -> ``PSEHead``; post-processing is ``PSEPostprocessor``.
"""

from __future__ import annotations

from ocrserve.mmocr.models.builder import MODELS
from ocrserve.mmocr.models.detectors.single_stage import SingleStageTextDetector

__all__ = ["PSENet"]


@MODELS.register("PSENet", ignore=("train_cfg", "test_cfg", "show_score"))
class PSENet(SingleStageTextDetector):
    """A single-stage detector whose head is a ``PSEHead``."""
