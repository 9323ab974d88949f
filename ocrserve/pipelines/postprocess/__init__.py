"""Post-processing: network outputs -> MMOCR's results (boundaries, text and scores)."""

from __future__ import annotations

from ocrserve.pipelines.postprocess.registry import (
    CONVERTORS,
    POSTPROCESSORS,
    build_convertor,
    build_postprocessor,
)

__all__ = ["CONVERTORS", "POSTPROCESSORS", "build_convertor", "build_postprocessor"]
