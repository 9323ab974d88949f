"""Necks, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.models.necks import fpem_ffm, fpn, fpnc, fpnf

__all__ = ["fpem_ffm", "fpn", "fpnc", "fpnf"]
