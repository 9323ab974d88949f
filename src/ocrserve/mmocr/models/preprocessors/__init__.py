"""Recognizer preprocessors (rectification before the backbone), registered by MMOCR type name."""

from __future__ import annotations

from ocrserve.mmocr.models.preprocessors import tps_preprocessor

__all__ = ["tps_preprocessor"]
