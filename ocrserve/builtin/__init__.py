"""The bundled default models: PP-OCRv4 detection, recognition and end-to-end OCR on ONNX Runtime.

The weights come from the ``rapidocr-onnxruntime`` wheel; pre- and post-processing are ours.
This module stays light (no cv2, no onnxruntime) so the HTTP process can list the models;
the implementations are imported only where a model is built, in a worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocrserve.errors import ModelNotFound

if TYPE_CHECKING:
    from ocrserve.predictor import Predictor

__all__ = ["BUILTIN_MODELS", "build_builtin"]

#: name -> task of each bundled model.
BUILTIN_MODELS: dict[str, str] = {"ppocr_det": "textdet", "ppocr_rec": "textrecog", "ocr": "e2e"}


def build_builtin(name: str, threads: int = 1) -> Predictor:
    """Build a bundled model by name; the error lists the names there are."""
    if name == "ppocr_det":
        from ocrserve.builtin.det import PPOCRDetector

        return PPOCRDetector(threads)
    if name == "ppocr_rec":
        from ocrserve.builtin.rec import PPOCRRecognizer

        return PPOCRRecognizer(threads)
    if name == "ocr":
        from ocrserve.builtin.e2e import PPOCREndToEnd

        return PPOCREndToEnd(threads)
    raise ModelNotFound(
        f"No bundled model {name!r}; bundled models: {', '.join(sorted(BUILTIN_MODELS))}"
    )
