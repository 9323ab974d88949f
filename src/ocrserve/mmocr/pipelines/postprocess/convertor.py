"""What every label convertor shares: the character table and turning indexes into text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ocrserve.mmocr.pipelines.postprocess.dictionaries import load_dictionary

__all__ = ["BaseConvertor"]


class BaseConvertor:
    """MMOCR's ``BaseConvertor``: ``idx2char`` and the special indexes decoders are built with."""

    start_idx: int = 0
    end_idx: int = 0
    padding_idx: int = 0
    unknown_idx: int | None = None
    lower: bool = False

    def __init__(
        self,
        dict_type: str = "DICT90",
        dict_file: str | Path | None = None,
        dict_list: Sequence[str] | None = None,
    ) -> None:
        self.idx2char: list[str] = load_dictionary(dict_type, dict_file, dict_list)
        self.char2idx = {char: idx for idx, char in enumerate(self.idx2char)}

    def num_classes(self) -> int:
        """Number of output classes the decoder has."""
        return len(self.idx2char)

    def idx2str(self, indexes: Sequence[Sequence[int]]) -> list[str]:
        """Join the characters of each index list."""
        return ["".join(self.idx2char[i] for i in index) for index in indexes]

    def tensor2idx(
        self, output: Any, img_metas: Sequence[Mapping[str, Any]]
    ) -> tuple[list[list[int]], list[list[float]]]:
        """Decoder output ``N x T x C`` (a numpy array or a CPU torch tensor) -> per image,
        character indexes and their scores."""
        raise NotImplementedError
