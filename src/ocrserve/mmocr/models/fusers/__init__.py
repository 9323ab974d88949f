"""Vision-language fusers, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.mmocr.models.fusers import abi_fuser

__all__ = ["abi_fuser"]
