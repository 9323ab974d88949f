"""Where the bundled PP-OCRv4 ONNX files live (found without importing anything heavy)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ocrserve.errors import ModelLoadError

__all__ = ["WEIGHTS_PACKAGE", "WEIGHT_FILES", "weights_path"]

#: The wheel that carries the PP-OCRv4 ONNX files (Apache-2.0, from PaddleOCR via RapidOCR).
WEIGHTS_PACKAGE = "rapidocr_onnxruntime"

WEIGHT_FILES = {
    "det": "ch_PP-OCRv4_det_infer.onnx",
    "rec": "ch_PP-OCRv4_rec_infer.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
}


def weights_path(kind: str) -> Path:
    """Path of a bundled ONNX file, found without importing the package (it imports cv2)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"The bundled weights need the package {WEIGHTS_PACKAGE!r}: "
            "pip install rapidocr-onnxruntime==1.4.4"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / WEIGHT_FILES[kind]
    if not path.is_file():
        raise ModelLoadError(f"Bundled weight file missing: {path}")
    return path
