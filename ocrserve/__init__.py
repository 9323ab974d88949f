"""ocrserve: serve OCR models over TorchServe's REST API, without Java or mmcv."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
