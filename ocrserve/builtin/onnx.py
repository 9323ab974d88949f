"""Where the bundled ONNX weights live, and ONNX Runtime sessions with controlled threading."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import onnxruntime as ort

from ocrserve.errors import ModelLoadError

__all__ = ["WEIGHTS_PACKAGE", "create_session", "weights_path"]

#: The wheel that carries the PP-OCRv4 ONNX files (Apache-2.0, from PaddleOCR via RapidOCR).
WEIGHTS_PACKAGE = "rapidocr_onnxruntime"

WEIGHT_FILES = {
    "det": "ch_PP-OCRv4_det_infer.onnx",
    "rec": "ch_PP-OCRv4_rec_infer.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
}


def weights_path(kind: str) -> Path:
    """Path of a bundled ONNX file, found without importing the package (it imports cv2 GUI)."""
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


def create_session(path: Path, threads: int) -> ort.InferenceSession:
    """A CPU session using ``threads`` intra-op threads and no inter-op parallelism."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError(f"Cannot load ONNX model {path.name}: {exc}") from exc
