"""MMOCR's ``SegConvertor``: a character segmentation map (SegOCR) -> characters and scores.

Per image, as MMOCR 0.6.3's ``tensor2str`` does: the arg-max class of every pixel over the first
``int(W * valid_ratio + 1)`` columns; the 8-connected components of the non-background pixels
(``cv2.connectedComponentsWithStats``, component 0 being the background); for each component its
majority class (the lowest index among ties) and the score ``majority count / pixel count``.
Components whose majority is the background, or whose majority count is under 20 pixels, are
dropped; the rest are read left to right by centroid x (stable for equal x). The background,
``<UKN>`` and out-of-range classes read as ``''`` but keep their score, so they still count in
the recognizer's ``sum(scores) / max(1, len(text))``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ocrserve.mmocr.pipelines.postprocess import CONVERTORS
from ocrserve.mmocr.pipelines.postprocess.activations import as_float32
from ocrserve.mmocr.pipelines.postprocess.convertor import BaseConvertor

__all__ = ["MIN_CHAR_PIXELS", "SegConvertor"]

#: A component whose majority class covers fewer pixels is not a character (MMOCR's constant).
MIN_CHAR_PIXELS = 20


@CONVERTORS.register("SegConvertor")
class SegConvertor(BaseConvertor):
    """``<BG>`` (index 0) + the dictionary (+ ``<UKN>`` last with ``with_unknown``)."""

    def __init__(
        self,
        dict_type: str = "DICT36",
        dict_file: str | Path | None = None,
        dict_list: Sequence[str] | None = None,
        with_unknown: bool = True,
        lower: bool = False,
        **kwargs: Any,
    ) -> None:
        # Like MMOCR's, takes and ignores other keywords (``max_seq_len``).
        super().__init__(dict_type, dict_file, dict_list)
        self.with_unknown = with_unknown
        self.lower = lower
        self.idx2char.insert(0, "<BG>")
        self.unknown_idx = None
        if with_unknown:
            self.idx2char.append("<UKN>")
            self.unknown_idx = len(self.idx2char) - 1
        self.char2idx = {char: idx for idx, char in enumerate(self.idx2char)}

    def tensor2idx(
        self, output: Any, img_metas: Sequence[Mapping[str, Any]]
    ) -> tuple[list[list[int]], list[list[float]]]:
        """Head output ``N x classes x H x W`` -> per image, the classes of its characters left
        to right and their scores."""
        output = as_float32(output)
        if len(img_metas) != output.shape[0]:
            raise ValueError(f"{output.shape[0]} outputs but {len(img_metas)} image metas")
        indexes: list[list[int]] = []
        scores: list[list[float]] = []
        for b, meta in enumerate(img_metas):
            valid_width = int(output.shape[-1] * meta.get("valid_ratio", 1.0) + 1)
            seg = np.argmax(output[b, :, :, :valid_width], axis=0)  # ties: the first class
            classes, char_scores = self.read_components(seg.astype(np.int32))
            indexes.append(classes)
            scores.append(char_scores)
        return indexes, scores

    def read_components(self, seg: np.ndarray) -> tuple[list[int], list[float]]:
        """An ``H x W`` class map -> the kept components' classes and scores, left to right."""
        foreground = np.where(seg == 0, 0, 255).astype(np.uint8)
        count, labels, _, centroids = cv2.connectedComponentsWithStats(foreground)
        found: list[tuple[float, int, float]] = []
        for i in range(count):
            values = seg[labels == i]
            votes = np.bincount(values[values >= 0], minlength=len(self.idx2char))
            votes = votes[: len(self.idx2char)]
            majority = int(votes.max()) if votes.size else 0
            if majority < MIN_CHAR_PIXELS:  # (also an empty background component)
                continue
            cls = int(votes.argmax())
            if cls == 0:
                continue
            found.append((float(centroids[i][0]), cls, majority / int(votes.sum())))
        found.sort(key=lambda item: item[0])
        return [cls for _, cls, _ in found], [score for _, _, score in found]

    def idx2str(self, indexes: Sequence[Sequence[int]]) -> list[str]:
        """Join the characters; the background, ``<UKN>`` and unknown classes read as ''."""
        return ["".join(self._char(i) for i in index) for index in indexes]

    def _char(self, index: int) -> str:
        if index <= 0 or index >= len(self.idx2char) or index == self.unknown_idx:
            return ""
        return self.idx2char[index]
