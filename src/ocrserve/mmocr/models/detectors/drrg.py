"""MMOCR's ``DRRG`` (Deep Relational Reasoning Graph Network for Arbitrary Shape Text Detection).

``mmdet.ResNet`` -> ``FPN_UNet`` -> ``DRRGHead``. Unlike the other detectors, the head's test
output is not a map: MMOCR's ``simple_test`` runs ``bbox_head.single_test`` (maps, components,
local graphs, GCN) and hands ``(edges, scores, text_comps)`` to ``DRRGPostprocessor``. Here
`forward` returns those three, padded per image so that images batch (`DRRGHead.forward`).
Its result dict has no ``filename`` key, as MMOCR's ``DRRG.simple_test`` gives none.
"""

from __future__ import annotations

from typing import ClassVar

from ocrserve.mmocr.models.builder import MODELS
from ocrserve.mmocr.models.detectors.single_stage import SingleStageTextDetector

__all__ = ["DRRG"]


@MODELS.register("DRRG", ignore=("train_cfg", "test_cfg", "show_score"))
class DRRG(SingleStageTextDetector):
    """A single-stage detector whose head builds and classifies a graph of text components."""

    result_has_filename: ClassVar[bool] = False
