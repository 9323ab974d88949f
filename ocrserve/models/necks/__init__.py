"""Necks, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.models.necks import fpnc

__all__ = ["fpnc"]
