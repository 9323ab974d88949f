"""The PaddleOCR family: the bundled PP-OCRv6 models and PaddleOCR ONNX models of any generation
(PP-OCRv3 to v6) as detection, recognition and end-to-end OCR on ONNX Runtime.

The bundled weights come from the ``rapidocr`` wheel; pre- and post-processing are ours.
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

__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_CONFIG",
    "PADDLEOCR_CONFIG",
    "SETTINGS_PRESETS",
    "TASK_FILES",
    "build_builtin",
    "build_ppocr",
]

#: name -> task of each bundled model.
BUILTIN_MODELS: dict[str, str] = {"ppocr_det": "textdet", "ppocr_rec": "textrecog", "ocr": "e2e"}
#: ONNX files each task needs: role -> file name in the archive.
TASK_FILES: dict[str, dict[str, str]] = {
    "textdet": {"det": "det.onnx"},
    "textrecog": {"rec": "rec.onnx"},
    "e2e": {"det": "det.onnx", "cls": "cls.onnx", "rec": "rec.onnx"},
}
#: The settings of the bundled PP-OCRv6 models, written into their archives' config.json
#: (docs/models.md: each value's source or the measurement on textset-public that chose it).
DEFAULT_CONFIG: dict[str, Any] = {
    "det": {
        "limit_type": "min",
        "limit_side_len": 736,
        "max_side_len": 2000,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "thresh": 0.3,
        "box_thresh": 0.65,
        "unclip_ratio": 1.2,
    },
    "rec": {"batch_num": 6},
    "cls": {"batch_num": 6, "thresh": 0.9},
    "e2e": {"drop_score": 0.5},
}
#: PaddleOCR 2.7's published inference defaults (PP-OCRv3/v4 and the models tuned like them).
PADDLEOCR_CONFIG: dict[str, Any] = {
    "det": {
        "limit_type": "max",
        "limit_side_len": 960,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "thresh": 0.3,
        "box_thresh": 0.6,
        "unclip_ratio": 1.5,
    },
    "rec": {"batch_num": 6},
    "cls": {"batch_num": 6, "thresh": 0.9},
    "e2e": {"drop_score": 0.5},
}
#: Named settings for ``ocrserve archive --ppocr-settings``.
SETTINGS_PRESETS: dict[str, dict[str, Any]] = {"v6": DEFAULT_CONFIG, "v4": PADDLEOCR_CONFIG}


def build_ppocr(
    task: str, files: Mapping[str, Path | None], config: Mapping[str, Any], threads: int
) -> Predictor:
    """Build a PP-OCR predictor from ONNX files (role -> path; None: the bundled file; role
    ``dict``: the recognizer's dictionary file, when not in its ONNX metadata)."""
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
        try:
            return PPOCRRecognizer(
                threads,
                model=files.get("rec"),
                dict_file=files.get("dict"),
                **config.get("rec", {}),
            )
        except TypeError as exc:
            raise ModelLoadError(f"config.json 'rec': {exc}") from exc

    if task == "textdet":
        return detector()
    if task == "textrecog":
        return recognizer()
    if task == "e2e":
        cls = None
        if "cls" in files:
            try:
                cls = PPOCRAngleClassifier(threads, model=files["cls"], **config.get("cls", {}))
            except TypeError as exc:
                raise ModelLoadError(f"config.json 'cls': {exc}") from exc
        det, rec = detector(), recognizer()
        try:
            return PPOCREndToEnd(det, rec, cls, **config.get("e2e", {}))
        except TypeError as exc:
            raise ModelLoadError(f"config.json 'e2e': {exc}") from exc
    raise ModelLoadError(f"PP-OCR models have no task {task!r}")


def build_builtin(name: str, threads: int = 1) -> Predictor:
    """Build a bundled model by name from the installed weights; errors list the names."""
    if name not in BUILTIN_MODELS:
        raise ModelNotFound(
            f"No bundled model {name!r}; bundled models: {', '.join(sorted(BUILTIN_MODELS))}"
        )
    task = BUILTIN_MODELS[name]
    return build_ppocr(task, dict.fromkeys(TASK_FILES[task]), DEFAULT_CONFIG, threads)
