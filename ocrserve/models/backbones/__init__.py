"""Backbones, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.models.backbones import resnet, very_deep_vgg

__all__ = ["resnet", "very_deep_vgg"]
