"""ocrserve: serve OCR models over TorchServe's REST API, without Java or mmcv.

The public Python API (the server and the ``ocrserve`` command are the rest):

- `load_predictor(model_dir, threads)`: the `Predictor` an extracted archive describes;
- `MMOCRPredictor`: an MMOCR 0.x config and checkpoint as a `Predictor` (needs PyTorch:
  ``pip install 'ocrserve[torch]'``; imported on first use);
- `Predictor`: what both are, ``predict(images) -> [result dict, ...]``;
- `Client` and `AsyncClient`: the server's REST API from Python (``ocrserve.client``; imported
  on first use);
- the errors, each mapped to TorchServe's ``{"code", "type", "message"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocrserve.archives.loader import load_predictor
from ocrserve.errors import (
    ArchiveError,
    BadRequest,
    CheckpointError,
    ConfigError,
    InvalidInput,
    ModelLoadError,
    ModelNotFound,
    OcrServeError,
    PayloadTooLarge,
    ServiceUnavailable,
    WorkerTimeout,
)
from ocrserve.predictor import Predictor
from ocrserve.version import __version__

if TYPE_CHECKING:
    from ocrserve.client import AsyncClient, Client
    from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor


__all__ = [
    "ArchiveError",
    "AsyncClient",
    "BadRequest",
    "CheckpointError",
    "Client",
    "ConfigError",
    "InvalidInput",
    "MMOCRPredictor",
    "ModelLoadError",
    "ModelNotFound",
    "OcrServeError",
    "PayloadTooLarge",
    "Predictor",
    "ServiceUnavailable",
    "WorkerTimeout",
    "__version__",
    "load_predictor",
]


def __getattr__(name: str) -> Any:
    if name == "MMOCRPredictor":  # imports torch: only when asked for
        from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor

        return MMOCRPredictor
    if name in ("Client", "AsyncClient"):  # httpx: only when asked for
        from ocrserve import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
