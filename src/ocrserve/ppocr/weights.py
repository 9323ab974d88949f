"""Where the bundled PP-OCRv6 ONNX files live (found without importing anything heavy)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ocrserve.errors import ModelLoadError

__all__ = [
    "WEIGHTS_DESCRIPTION",
    "WEIGHTS_PACKAGE",
    "WEIGHTS_REQUIREMENT",
    "WEIGHT_FILES",
    "weights_path",
]

#: The wheel that carries the ONNX files (Apache-2.0 code and weights; PaddleOCR's models
#: converted by RapidOCR, attribution in its MODEL_LICENSES.md).
WEIGHTS_PACKAGE = "rapidocr"
WEIGHTS_REQUIREMENT = "rapidocr==3.10.0"

WEIGHT_FILES = {
    "det": "PP-OCRv6_det_small.onnx",
    "rec": "PP-OCRv6_rec_small.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}

#: What describe says a bundled model serves (the manifest's ``weights``).
WEIGHTS_DESCRIPTION = {
    "det": "PP-OCRv6_det_small",
    "rec": "PP-OCRv6_rec_small",
    "cls": "ch_ppocr_mobile_v2.0_cls",
}


def weights_path(kind: str) -> Path:
    """Path of a bundled ONNX file, found without importing the package (it imports cv2)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"The bundled weights need the package {WEIGHTS_PACKAGE!r}: "
            f"pip install {WEIGHTS_REQUIREMENT}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / WEIGHT_FILES[kind]
    if not path.is_file():
        raise ModelLoadError(f"Bundled weight file missing: {path}")
    return path
