"""MMOCR's ``CTCConvertor``: greedy CTC decoding of per-column logits into text and scores."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ocrserve.mmocr.pipelines.postprocess import CONVERTORS
from ocrserve.mmocr.pipelines.postprocess.activations import softmax
from ocrserve.mmocr.pipelines.postprocess.convertor import BaseConvertor

__all__ = ["CTCConvertor"]


@CONVERTORS.register("CTCConvertor")
class CTCConvertor(BaseConvertor):
    """``<BLK>`` (index 0) + the dictionary (+ ``<UKN>`` last with ``with_unknown``)."""

    def __init__(
        self,
        dict_type: str = "DICT90",
        dict_file: str | Path | None = None,
        dict_list: Sequence[str] | None = None,
        with_unknown: bool = True,
        lower: bool = False,
        **kwargs: Any,
    ) -> None:
        # Like MMOCR's, takes and ignores other keywords (``max_seq_len`` from the recognizer).
        super().__init__(dict_type, dict_file, dict_list)
        self.with_unknown = with_unknown
        self.lower = lower
        self.blank_idx = 0
        self.idx2char.insert(0, "<BLK>")
        self.unknown_idx = None
        if with_unknown:
            self.idx2char.append("<UKN>")
            self.unknown_idx = len(self.idx2char) - 1
        self.char2idx = {char: idx for idx, char in enumerate(self.idx2char)}

    def tensor2idx(
        self, output: Any, img_metas: Sequence[Mapping[str, Any]]
    ) -> tuple[list[list[int]], list[list[float]]]:
        """Softmax, argmax per column over the valid width, merge repeats, drop blanks.

        Only the first ``ceil(T * valid_ratio)`` columns are decoded; a character's score is its
        softmax probability at the column where it starts.
        """
        probs = softmax(output, axis=2)
        if len(img_metas) != probs.shape[0]:
            raise ValueError(f"{probs.shape[0]} outputs but {len(img_metas)} image metas")
        top_idx = probs.argmax(axis=2)  # ties: the first index
        top_value = np.take_along_axis(probs, top_idx[:, :, None], axis=2)[:, :, 0]
        feat_len = probs.shape[1]
        indexes: list[list[int]] = []
        scores: list[list[float]] = []
        for b, meta in enumerate(img_metas):
            decode_len = min(feat_len, math.ceil(feat_len * meta.get("valid_ratio", 1.0)))
            pred = top_idx[b].tolist()
            select, prev = [], self.blank_idx
            for t in range(decode_len):
                if pred[t] not in (prev, self.blank_idx):
                    select.append(t)
                prev = pred[t]
            indexes.append([pred[t] for t in select])
            scores.append([float(top_value[b, t]) for t in select])
        return indexes, scores
