"""MMOCR networks in pure PyTorch, with MMOCR's parameter names, built from configs by type name.

This package stays light on import: the architectures (and torch) load when a model is first built.
"""

from __future__ import annotations

from ocrserve.mmocr.models.builder import MODELS, build_model

__all__ = ["MODELS", "build_model"]
