"""Heads (text detection; SegOCR's segmentation head), registered by MMOCR type on import."""

from __future__ import annotations

from ocrserve.mmocr.models.heads import (
    db_head,
    drrg_head,
    fce_head,
    pan_head,
    pse_head,
    roi_head,
    rpn_head,
    seg_head,
    textsnake_head,
)

__all__ = [
    "db_head",
    "drrg_head",
    "fce_head",
    "pan_head",
    "pse_head",
    "roi_head",
    "rpn_head",
    "seg_head",
    "textsnake_head",
]
