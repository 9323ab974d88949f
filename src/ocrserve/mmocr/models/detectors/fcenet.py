"""MMOCR's ``FCENet`` (Fourier Contour Embedding for Arbitrary-Shaped Text Detection).

Usually ``mmdet.ResNet`` -> ``mmdet.FPN`` -> ``FCEHead``; post-processing is ``FCEPostprocessor``
over all levels. MMOCR's FCENet result has no ``filename`` key.
"""

from __future__ import annotations

from typing import ClassVar

from ocrserve.mmocr.models.builder import MODELS
from ocrserve.mmocr.models.detectors.single_stage import SingleStageTextDetector

__all__ = ["FCENet"]


@MODELS.register("FCENet", ignore=("train_cfg", "test_cfg", "show_score"))
class FCENet(SingleStageTextDetector):
    """A single-stage detector whose head is an ``FCEHead`` (one output pair per level)."""

    result_has_filename: ClassVar[bool] = False
