"""MMOCR's ``AttnConvertor`` and ``ABIConvertor``: greedy attention decoding into text and scores.

The character table is the dictionary, then ``<UKN>`` (``with_unknown``), then ``<BOS/EOS>``
(start and end share one index unless ``start_end_same`` is False, which adds a second one), then
``<PAD>``. With ``DICT90`` that is 90 characters, ``<UKN>`` 90, ``<BOS/EOS>`` 91, ``<PAD>`` 92;
with ``DICT36`` and no unknown, ``<BOS/EOS>`` 36 and ``<PAD>`` 37.

Decoding takes, per step, the largest value of the decoder output (probabilities for most
decoders, raw logits for ``MasterDecoder``, as MMOCR), skips ``<PAD>`` and stops at the end token;
the scores are those values. ``ABIConvertor`` only changes how training targets are built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ocrserve.mmocr.pipelines.postprocess import CONVERTORS
from ocrserve.mmocr.pipelines.postprocess.activations import as_float32
from ocrserve.mmocr.pipelines.postprocess.convertor import BaseConvertor

__all__ = ["ABIConvertor", "AttnConvertor"]


@CONVERTORS.register("AttnConvertor")
class AttnConvertor(BaseConvertor):
    """Dictionary + ``<UKN>`` + ``<BOS/EOS>`` + ``<PAD>``, decoded greedily up to the end token."""

    def __init__(
        self,
        dict_type: str = "DICT90",
        dict_file: str | Path | None = None,
        dict_list: Sequence[str] | None = None,
        with_unknown: bool = True,
        max_seq_len: int = 40,
        lower: bool = False,
        start_end_same: bool = True,
        **kwargs: Any,
    ) -> None:
        # Like MMOCR's, takes and ignores other keywords (``with_padding`` in ABINet configs).
        super().__init__(dict_type, dict_file, dict_list)
        self.with_unknown = with_unknown
        self.max_seq_len = max_seq_len
        self.lower = lower
        self.start_end_same = start_end_same
        self.unknown_idx = None
        if with_unknown:
            self.idx2char.append("<UKN>")
            self.unknown_idx = len(self.idx2char) - 1
        self.idx2char.append("<BOS/EOS>")
        self.start_idx = len(self.idx2char) - 1
        if not start_end_same:
            self.idx2char.append("<BOS/EOS>")
        self.end_idx = len(self.idx2char) - 1
        self.idx2char.append("<PAD>")
        self.padding_idx = len(self.idx2char) - 1
        self.char2idx = {char: idx for idx, char in enumerate(self.idx2char)}

    def tensor2idx(
        self, output: Any, img_metas: Sequence[Mapping[str, Any]] | None = None
    ) -> tuple[list[list[int]], list[list[float]]]:
        """Per image: the arg-max index of each step until the end token, ``<PAD>`` skipped."""
        indexes: list[list[int]] = []
        scores: list[list[float]] = []
        for seq in as_float32(output):
            max_idx = seq.argmax(axis=-1)  # ties: the first index
            max_value = np.take_along_axis(seq, max_idx[:, None], axis=-1)[:, 0]
            chars: list[int] = []
            char_scores: list[float] = []
            for index, score in zip(max_idx.tolist(), max_value.tolist()):
                if index == self.padding_idx:
                    continue
                if index == self.end_idx:
                    break
                chars.append(index)
                char_scores.append(score)
            indexes.append(chars)
            scores.append(char_scores)
        return indexes, scores


@CONVERTORS.register("ABIConvertor")
class ABIConvertor(AttnConvertor):
    """ABINet's convertor: the same table and decoding as `AttnConvertor`."""
