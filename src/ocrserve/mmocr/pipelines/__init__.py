"""Pre-processing pipelines (MMOCR test pipelines, built by type name) and post-processing."""

from __future__ import annotations

from ocrserve.mmocr.pipelines.compose import (
    TRANSFORMS,
    Compose,
    Sample,
    build_pipeline,
    select_test_pipeline,
    to_samples,
)

__all__ = [
    "TRANSFORMS",
    "Compose",
    "Sample",
    "build_pipeline",
    "select_test_pipeline",
    "to_samples",
]
