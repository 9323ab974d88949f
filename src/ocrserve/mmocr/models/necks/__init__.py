"""Necks, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.mmocr.models.necks import fpem_ffm, fpn, fpn_ocr, fpn_unet, fpnc, fpnf

__all__ = ["fpem_ffm", "fpn", "fpn_ocr", "fpn_unet", "fpnc", "fpnf"]
