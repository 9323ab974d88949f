"""MMOCR's ``DBNet`` (Real-time Scene Text Detection with Differentiable Binarization).

Usually ``mmdet.ResNet`` -> ``FPNC`` -> ``DBHead``; post-processing is ``DBPostprocessor``.
"""

from __future__ import annotations

from ocrserve.mmocr.models.builder import MODELS
from ocrserve.mmocr.models.detectors.single_stage import SingleStageTextDetector

__all__ = ["DBNet"]


@MODELS.register("DBNet", ignore=("train_cfg", "test_cfg", "show_score"))
class DBNet(SingleStageTextDetector):
    """A single-stage detector whose head is a ``DBHead``."""

    channels_last = True
