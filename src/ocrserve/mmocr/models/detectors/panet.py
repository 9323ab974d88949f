"""MMOCR's ``PANet`` (Efficient and Accurate Arbitrary-Shaped Text Detection with PAN).

Usually ``mmdet.ResNet`` -> ``FPEM_FFM`` -> ``PANHead``; post-processing is ``PANPostprocessor``.
"""

from __future__ import annotations

from ocrserve.mmocr.models.builder import MODELS
from ocrserve.mmocr.models.detectors.single_stage import SingleStageTextDetector

__all__ = ["PANet"]


@MODELS.register("PANet", ignore=("train_cfg", "test_cfg", "show_score"))
class PANet(SingleStageTextDetector):
    """A single-stage detector whose head is a ``PANHead``."""

    channels_last = True
