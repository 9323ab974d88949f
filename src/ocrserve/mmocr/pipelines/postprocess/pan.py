"""MMOCR 0.x's ``PANPostprocessor``: PANet's text, kernel and similarity maps -> boundaries.

Sigmoid of the text and kernel logits; text pixels are ``text > min_text_confidence``, kernels
``kernel > min_kernel_confidence`` within the text. Kernel components (OpenCV, 4-connected)
and their contour pixels seed `pixel_group`, which MMOCR calls with ``min_text_avg_confidence``
as the similarity distance threshold. A group with at least ``min_text_area`` pixels and a mean
text score above ``min_text_avg_confidence`` becomes a boundary (`points2boundary`).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ocrserve.errors import ConfigError
from ocrserve.mmocr.pipelines.postprocess import POSTPROCESSORS
from ocrserve.mmocr.pipelines.postprocess.activations import sigmoid
from ocrserve.mmocr.pipelines.postprocess.db import points2boundary
from ocrserve.mmocr.pipelines.postprocess.region_growing import pixel_group

__all__ = ["PANPostprocessor"]


@POSTPROCESSORS.register("PANPostprocessor")
class PANPostprocessor:
    """Decode PANet's ``6 x H x W`` head output (text, kernel, 4 similarity channels)."""

    def __init__(
        self,
        text_repr_type: str = "poly",
        min_text_confidence: float = 0.5,
        min_kernel_confidence: float = 0.5,
        min_text_avg_confidence: float = 0.85,
        min_text_area: int = 16,
        **kwargs: Any,
    ) -> None:
        if text_repr_type not in ("poly", "quad"):
            raise ConfigError(
                f"PANPostprocessor: text_repr_type must be 'poly' or 'quad', got {text_repr_type!r}"
            )
        self.text_repr_type = text_repr_type
        self.min_text_confidence = min_text_confidence
        self.min_kernel_confidence = min_kernel_confidence
        self.min_text_avg_confidence = min_text_avg_confidence
        self.min_text_area = min_text_area

    def __call__(self, preds: np.ndarray) -> list[list[float]]:
        if preds.ndim != 3 or preds.shape[0] < 3:
            raise ValueError(f"PANPostprocessor expects a C x H x W map, got shape {preds.shape}")
        preds = np.ascontiguousarray(preds, dtype=np.float32)
        probs = sigmoid(preds[:2])
        text_score = probs[0]
        text = text_score > self.min_text_confidence
        kernel = ((probs[1] > self.min_kernel_confidence) & text).astype(np.uint8)
        embedding = preds[2:].transpose(1, 2, 0)
        region_num, labels = cv2.connectedComponents(kernel, connectivity=4)
        contours, _ = cv2.findContours(kernel * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        kernel_contours = np.zeros(text.shape, dtype=np.uint8)
        cv2.drawContours(kernel_contours, contours, -1, (255,))
        groups = pixel_group(
            text_score,
            text,
            embedding,
            labels,
            kernel_contours,
            region_num,
            self.min_text_avg_confidence,
        )
        boundaries: list[list[float]] = []
        for group in groups:
            confidence = group[0]
            points = np.array(group[2:], dtype=int).reshape(-1, 2)
            if not (
                points.shape[0] >= self.min_text_area and confidence > self.min_text_avg_confidence
            ):
                continue
            boundary = points2boundary(points, self.text_repr_type, confidence)
            if boundary is not None:
                boundaries.append(boundary)
        return boundaries
