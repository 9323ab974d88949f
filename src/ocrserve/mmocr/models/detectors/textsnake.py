"""MMOCR's ``TextSnake`` (A Flexible Representation for Detecting Text of Arbitrary Shapes).

``mmdet.ResNet`` -> ``FPN_UNet`` -> ``TextSnakeHead``; post-processing is
``TextSnakePostprocessor``. At test time MMOCR's ``TextSnake`` is a plain
``SingleStageTextDetector`` (its mixin only draws results): the raw head output goes to the
postprocessor, boundaries are scaled back by ``1 / downsample_ratio / scale_factor``.
"""

from __future__ import annotations

from ocrserve.mmocr.models.builder import MODELS
from ocrserve.mmocr.models.detectors.single_stage import SingleStageTextDetector

__all__ = ["TextSnake"]


@MODELS.register("TextSnake", ignore=("train_cfg", "test_cfg", "show_score"))
class TextSnake(SingleStageTextDetector):
    """A single-stage detector whose head is a ``TextSnakeHead``."""
