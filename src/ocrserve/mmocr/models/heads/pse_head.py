"""MMOCR's ``PSEHead``: PANHead with PSENet's defaults (kernel logits, ``PSEPostprocessor``)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from ocrserve.mmocr.models.builder import HEADS
from ocrserve.mmocr.models.heads.pan_head import PANHead

__all__ = ["PSEHead"]


@HEADS.register("PSEHead")
class PSEHead(PANHead):
    """``out_channels`` kernel maps (largest, i.e. the text region, first)."""

    default_postprocessor: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"type": "PSEPostprocessor", "text_repr_type": "poly"}
    )
