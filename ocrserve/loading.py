"""Building a `Predictor` from an extracted archive folder (runs in a worker process).

Nothing in the folder is executed or unpickled: configs are JSON (or MMOCR ``.py`` read as data),
weights are ONNX, safetensors, or a ``.pth`` read with ``weights_only=True``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ocrserve.archive import MANIFEST_PATH, ArchiveError, parse_manifest
from ocrserve.predictor import Predictor

__all__ = ["load_predictor"]


def _inside(folder: Path, name: str) -> Path:
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents:
        raise ArchiveError(f"{name!r} points outside the archive")
    return path


def load_predictor(model_dir: str | Path, threads: int, device: str = "cpu") -> Predictor:
    """The predictor an archive describes."""
    folder = Path(model_dir)
    manifest = parse_manifest((folder / MANIFEST_PATH).read_bytes(), folder.name)
    section: dict[str, Any] = dict(manifest.ocrserve)
    if manifest.is_legacy_mmocr:
        from ocrserve.mmocr_predictor import MMOCRPredictor

        config = _inside(folder, manifest.model_file or "config.py")
        weights = _inside(folder, manifest.serialized_file)
        return MMOCRPredictor.from_files(
            config, weights, device=device, base_dir=folder, lean=True
        )
    config = json.loads(_inside(folder, str(section.get("config", "config.json"))).read_text())
    kind, engine = section.get("kind"), section.get("engine")
    if kind == "ppocr":
        from ocrserve.builtin import build_ppocr

        files = {role: _inside(folder, name) for role, name in section.get("files", {}).items()}
        return build_ppocr(str(section["task"]), files, config, threads)
    if kind == "mmocr" and engine in ("torch", "onnx"):
        from ocrserve.mmocr_predictor import MMOCRPredictor

        weights = _inside(folder, manifest.serialized_file)
        config_path = _inside(folder, str(section.get("config", "config.json")))
        predictor = MMOCRPredictor.from_files(
            config_path, weights, device=device, base_dir=folder, lean=True
        )
        if engine == "onnx":
            predictor.use_onnx(_inside(folder, str(section.get("onnx", "model.onnx"))), threads)
        return predictor
    raise ArchiveError(f"{folder.name}: no loader for kind {kind!r} with engine {engine!r}")
