"""MMOCR's ``CTCConvertor``: greedy CTC decoding of per-column logits into text and scores."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ocrserve.mmocr.pipelines.postprocess import CONVERTORS
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
        self, output: Tensor, img_metas: Sequence[Mapping[str, Any]]
    ) -> tuple[list[list[int]], list[list[float]]]:
        """Softmax, argmax per column over the valid width, merge repeats, drop blanks.

        Only the first ``ceil(T * valid_ratio)`` columns are decoded; a character's score is its
        softmax probability at the column where it starts.
        """
        if len(img_metas) != output.size(0):
            raise ValueError(f"{output.size(0)} outputs but {len(img_metas)} image metas")
        probs = F.softmax(output, dim=2).cpu().detach()
        top_value, top_idx = probs.topk(1, dim=2)
        feat_len = probs.size(1)
        indexes: list[list[int]] = []
        scores: list[list[float]] = []
        for b, meta in enumerate(img_metas):
            decode_len = min(feat_len, math.ceil(feat_len * meta.get("valid_ratio", 1.0)))
            pred = top_idx[b, :, 0].tolist()
            select, prev = [], self.blank_idx
            for t in range(decode_len):
                if pred[t] not in (prev, self.blank_idx):
                    select.append(t)
                prev = pred[t]
            chosen = torch.tensor(select, dtype=torch.long)
            indexes.append(top_idx[b, :, 0].index_select(0, chosen).tolist())
            scores.append(top_value[b, :, 0].index_select(0, chosen).tolist())
        return indexes, scores
