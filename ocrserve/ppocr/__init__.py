"""The bundled default models: PP-OCRv4 detection, recognition and end-to-end OCR on ONNX Runtime.

The weights come from the ``rapidocr-onnxruntime`` wheel; pre- and post-processing are ours.
This module stays light (no cv2, no onnxruntime) so the HTTP process can list the models;
the implementations are imported only where a model is built, in a worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocrserve.errors import ModelLoadError, ModelNotFound

if TYPE_CHECKING:
    from ocrserve.predictor import Predictor

__all__ = ["BUILTIN_MODELS", "DEFAULT_CONFIG", "build_builtin", "build_ppocr"]

#: name -> task of each bundled model.
BUILTIN_MODELS: dict[str, str] = {"ppocr_det": "textdet", "ppocr_rec": "textrecog", "ocr": "e2e"}
#: ONNX files each task needs: role -> file name in the archive.
TASK_FILES: dict[str, dict[str, str]] = {
    "textdet": {"det": "det.onnx"},
    "textrecog": {"rec": "rec.onnx"},
    "e2e": {"det": "det.onnx", "cls": "cls.onnx", "rec": "rec.onnx"},
}
#: The settings written into a bundled archive's config.json (PaddleOCR's published defaults).
DEFAULT_CONFIG: dict[str, Any] = {
    "det": {},  # DBSettings() defaults; keys override them
    "rec": {"batch_num": 6},
    "cls": {"batch_num": 6, "thresh": 0.9},
    "e2e": {"drop_score": 0.5},
}


def build_ppocr(
    task: str, files: Mapping[str, Path | None], config: Mapping[str, Any], threads: int
) -> Predictor:
    """Build a PP-OCR predictor from ONNX files (role -> path; None: the bundled file)."""
    from ocrserve.ppocr.det import DBSettings, PPOCRDetector
    from ocrserve.ppocr.e2e import PPOCREndToEnd
    from ocrserve.ppocr.rec import PPOCRAngleClassifier, PPOCRRecognizer

    def detector() -> PPOCRDetector:
        det = dict(config.get("det", {}))
        for key in ("mean", "std"):
            if key in det:
                det[key] = tuple(det[key])
        try:
            settings = DBSettings(**det)
        except TypeError as exc:
            raise ModelLoadError(f"config.json 'det': {exc}") from exc
        return PPOCRDetector(threads, settings, files.get("det"))

    def recognizer() -> PPOCRRecognizer:
        return PPOCRRecognizer(threads, model=files.get("rec"), **config.get("rec", {}))

    if task == "textdet":
        return detector()
    if task == "textrecog":
        return recognizer()
    if task == "e2e":
        cls = PPOCRAngleClassifier(threads, model=files.get("cls"), **config.get("cls", {}))
        return PPOCREndToEnd(detector(), recognizer(), cls, **config.get("e2e", {}))
    raise ModelLoadError(f"PP-OCR models have no task {task!r}")


def build_builtin(name: str, threads: int = 1) -> Predictor:
    """Build a bundled model by name from the installed weights; errors list the names."""
    if name not in BUILTIN_MODELS:
        raise ModelNotFound(
            f"No bundled model {name!r}; bundled models: {', '.join(sorted(BUILTIN_MODELS))}"
        )
    task = BUILTIN_MODELS[name]
    return build_ppocr(task, dict.fromkeys(TASK_FILES[task]), DEFAULT_CONFIG, threads)
