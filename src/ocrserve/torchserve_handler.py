"""A TorchServe handler, so an ocrserve ``.mar`` also runs on a real TorchServe.

Our manifests name ``ocrserve.torchserve_handler`` as the handler. TorchServe imports it by
module name from the Python environment of its workers (``pip install ocrserve`` there) and
calls `handle` for each batch; nothing from the archive is imported. The answers are the same
JSON ocrserve's own server sends: the model is built by the same `load_predictor` from the
extracted archive, and images are decoded the same way.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from ocrserve.errors import OcrServeError
from ocrserve.imaging import decode, decode_base64, maybe_base64
from ocrserve.predictor import Predictor

__all__ = ["handle"]

#: Same default cap as ocrserve's ``max_image_pixels``.
MAX_IMAGE_PIXELS = 40_000_000

_predictor: Predictor | None = None


def _load(context: Any) -> Predictor:
    from ocrserve.archives.loader import load_predictor

    props = context.system_properties
    model_dir = props.get("model_dir")
    gpu = props.get("gpu_id")
    device = f"cuda:{gpu}" if gpu is not None and _cuda_available() else "cpu"
    threads = int(os.environ.get("OMP_NUM_THREADS", "0")) or (os.cpu_count() or 1)
    return load_predictor(model_dir, threads, device=device)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _image_bytes(row: Any) -> bytes:
    """The image of one TorchServe request row (``data`` or ``body``; bytes, base64, JSON)."""
    value = row.get("data") or row.get("body") if isinstance(row, dict) else row
    if isinstance(value, (bytes, bytearray)):
        return maybe_base64(bytes(value))
    if isinstance(value, str):
        return decode_base64(value.encode())
    if isinstance(value, dict) and isinstance(value.get("data"), str):
        return base64.b64decode(value["data"])
    raise ValueError("no image in the request (send it raw, or as field 'data')")


def handle(data: list[Any] | None, context: Any) -> list[Any] | None:
    """TorchServe's entry point: one result dict per request row, in order."""
    global _predictor
    if _predictor is None:
        _predictor = _load(context)
    if data is None:
        return None
    predictor = _predictor
    out: list[Any] = [None] * len(data)
    images, where = [], []
    for i, row in enumerate(data):
        try:
            raw = _image_bytes(row)
            images.append(
                decode(raw, MAX_IMAGE_PIXELS, exif_orientation=predictor.exif_orientation)
            )
            where.append(i)
        except (OcrServeError, ValueError) as exc:
            out[i] = {"code": 400, "type": "BadRequestException", "message": str(exc)}
            if hasattr(context, "set_response_status"):  # TorchServe's per-request status
                context.set_response_status(400, "Bad Request", idx=i)
    if images:
        for i, result in zip(where, predictor.predict(images)):
            out[i] = result
    return out
