"""MMOCR's ``FCEHead`` (FCENet): per pyramid level, classification and Fourier regression maps.

For each neck level, ``out_conv_cls`` (3x3, 4 channels: text region and text centre line, two
logits each) and ``out_conv_reg`` (3x3, ``2 * (2k + 1) * 2`` channels: the real then the
imaginary Fourier coefficients of degree ``k``). Output: one ``(cls, reg)`` pair per level,
which ``FCEPostprocessor`` decodes with the head's ``scales`` and ``nms_thr``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from torch import Tensor, nn

from ocrserve.mmocr.models.builder import HEADS

__all__ = ["FCEHead"]

#: Keys MMOCR 0.x still accepted on the head and moved into its postprocessor config.
_LEGACY_POSTPROCESS_KEYS = ("num_reconstr_points", "alpha", "beta", "score_thr")


@HEADS.register("FCEHead")
class FCEHead(nn.Module):
    """Two 3x3 convolutions shared by every level."""

    default_postprocessor: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {
            "type": "FCEPostprocessor",
            "text_repr_type": "poly",
            "num_reconstr_points": 50,
            "alpha": 1.0,
            "beta": 2.0,
            "score_thr": 0.3,
        }
    )

    def __init__(
        self,
        in_channels: int,
        scales: Sequence[int],
        fourier_degree: int = 5,
        nms_thr: float = 0.1,
        **kwargs: Any,
    ) -> None:
        # Like MMOCR's, takes and ignores loss, postprocessor (built by the predictor),
        # train_cfg, test_cfg and the legacy keys (see `postprocessor_overrides`).
        super().__init__()
        self.downsample_ratio = 1.0
        self.in_channels = in_channels
        self.scales = tuple(scales)
        self.fourier_degree = fourier_degree
        self.nms_thr = nms_thr
        self._legacy = {k: kwargs[k] for k in _LEGACY_POSTPROCESS_KEYS if kwargs.get(k)}
        self.out_conv_cls = nn.Conv2d(in_channels, 4, kernel_size=3, stride=1, padding=1)
        self.out_conv_reg = nn.Conv2d(
            in_channels, (2 * fourier_degree + 1) * 2, kernel_size=3, stride=1, padding=1
        )

    def postprocessor_overrides(self) -> dict[str, Any]:
        """What MMOCR's head writes into its postprocessor config (and what decoding needs)."""
        return {
            **self._legacy,
            "fourier_degree": self.fourier_degree,
            "nms_thr": self.nms_thr,
            "scales": list(self.scales),
        }

    def forward(self, feats: Sequence[Tensor]) -> tuple[tuple[Tensor, Tensor], ...]:
        return tuple((self.out_conv_cls(x), self.out_conv_reg(x)) for x in feats)
