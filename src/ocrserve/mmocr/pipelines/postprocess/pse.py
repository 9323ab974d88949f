"""MMOCR 0.x's ``PSEPostprocessor``: PSENet's kernel logits -> text boundaries.

Sigmoid of all maps (float32, as MMOCR's torch); text pixels are
``map0 > min_kernel_confidence``; each kernel is that threshold of its map within the text. The
smallest kernel's 4-connected components (OpenCV) seed `contour_expand`; each grown label with at
least ``min_text_area`` pixels and a mean text score above ``min_text_avg_confidence`` becomes a
boundary (`points2boundary`: ``quad`` minimum-area rectangle or ``poly`` outer contour) in the
coordinates of the map (1/4 of the input; the predictor rescales).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ocrserve.errors import ConfigError
from ocrserve.mmocr.pipelines.postprocess import POSTPROCESSORS
from ocrserve.mmocr.pipelines.postprocess.activations import sigmoid
from ocrserve.mmocr.pipelines.postprocess.db import points2boundary
from ocrserve.mmocr.pipelines.postprocess.region_growing import contour_expand

__all__ = ["PSEPostprocessor", "label_points"]


def label_points(labels: np.ndarray, num: int) -> list[np.ndarray]:
    """Flat raster indexes of the pixels of each label ``1..num`` (index ``i - 1``)."""
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(1, num + 2))
    return [order[bounds[i] : bounds[i + 1]] for i in range(num)]


@POSTPROCESSORS.register("PSEPostprocessor")
class PSEPostprocessor:
    """Decode PSENet's ``K x H x W`` kernel logits (largest kernel first)."""

    def __init__(
        self,
        text_repr_type: str = "poly",
        min_kernel_confidence: float = 0.5,
        min_text_avg_confidence: float = 0.85,
        min_kernel_area: int = 0,
        min_text_area: int = 16,
        **kwargs: Any,
    ) -> None:
        if text_repr_type not in ("poly", "quad"):
            raise ConfigError(
                f"PSEPostprocessor: text_repr_type must be 'poly' or 'quad', got {text_repr_type!r}"
            )
        self.text_repr_type = text_repr_type
        self.min_kernel_confidence = min_kernel_confidence
        self.min_text_avg_confidence = min_text_avg_confidence
        self.min_kernel_area = int(min_kernel_area)
        self.min_text_area = int(min_text_area)

    def __call__(self, preds: np.ndarray) -> list[list[float]]:
        if preds.ndim != 3:
            raise ValueError(f"PSEPostprocessor expects a K x H x W map, got shape {preds.shape}")
        probs = sigmoid(preds)
        masks = probs > self.min_kernel_confidence
        kernel_masks = (masks & masks[0]).astype(np.uint8)
        score = probs[0]
        _, seeds = cv2.connectedComponents(kernel_masks[-1], connectivity=4)
        labels = contour_expand(kernel_masks, seeds, self.min_kernel_area)
        w = labels.shape[1]
        boundaries: list[list[float]] = []
        flat_score = score.ravel()
        for idx in label_points(labels, int(labels.max())):
            area = idx.size
            if area == 0:
                continue
            text_score = float(np.mean(flat_score[idx]))
            if not (area >= self.min_text_area and text_score > self.min_text_avg_confidence):
                continue
            points = np.stack([idx % w, idx // w], axis=1)
            boundary = points2boundary(points, self.text_repr_type, text_score)
            if boundary is not None:
                boundaries.append(boundary)
        return boundaries
