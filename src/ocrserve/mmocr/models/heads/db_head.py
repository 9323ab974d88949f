"""MMOCR's ``DBHead``: probability and threshold maps, and their differentiable binarization.

Output: ``N x 3 x H x W`` (probability, threshold, approximate binary map) at 4x the input feature
resolution, exactly what MMOCR 0.x's ``DBHead.forward`` returns. In MMOCR 1.x the head is called
``det_head`` and applies the probability sigmoid outside ``binarize``; the parameter indices are
the same (see `ocrserve.mmocr.models.keymap`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import HEADS

__all__ = ["DBHead"]


def _branch(in_channels: int, bias: bool) -> nn.Sequential:
    quarter = in_channels // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, quarter, 3, bias=bias, padding=1),
        nn.BatchNorm2d(quarter),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(quarter, quarter, 2, 2),
        nn.BatchNorm2d(quarter),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(quarter, 1, 2, 2),
        nn.Sigmoid(),
    )


@HEADS.register("DBHead")
class DBHead(nn.Module):
    """Two conv/deconv branches: ``binarize`` (text probability) and ``threshold``."""

    #: The postprocessor MMOCR's DBHead uses when its config names none.
    default_postprocessor: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"type": "DBPostprocessor", "text_repr_type": "quad"}
    )

    def __init__(
        self,
        in_channels: int,
        with_bias: bool = False,
        downsample_ratio: float = 1.0,
        **kwargs: Any,
    ) -> None:
        # Like MMOCR's, takes and ignores other keywords: loss, postprocessor (built by the
        # predictor), train_cfg, test_cfg, and the legacy text_repr_type / decoding_type.
        super().__init__()
        self.in_channels = in_channels
        self.downsample_ratio = downsample_ratio
        self.binarize = _branch(in_channels, with_bias)
        # MMOCR builds the threshold branch without bias whatever ``with_bias`` says.
        self.threshold = _branch(in_channels, False)
        #: Compute only the probability map (`drop_unused_outputs`).
        self.prob_only = False

    def drop_unused_outputs(self) -> None:
        """Return only the probability map from now on: all that `DBPostprocessor` reads.

        This skips the threshold branch (about a quarter of DBNet-r18's time); the boundaries
        are unchanged, the raw output then has one channel instead of MMOCR's three.
        """
        self.prob_only = True

    def forward(self, inputs: Tensor) -> Tensor:
        prob_map = self.binarize(inputs)
        if self.prob_only:
            return prob_map
        thr_map = self.threshold(inputs)
        binary_map = torch.reciprocal(1.0 + torch.exp(-50 * (prob_map - thr_map)))
        return torch.cat((prob_map, thr_map, binary_map), dim=1)
