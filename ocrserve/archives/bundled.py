"""The bundled models as archives: built into a user cache folder on first start.

Each bundled model becomes ``NAME.mar`` like any other archive (ONNX files, config.json and the
manifest); the folder is rebuilt when the ocrserve version that wrote it differs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ocrserve.archives.mar import new_manifest, read_manifest, write_archive
from ocrserve.errors import ArchiveError
from ocrserve.ppocr import BUILTIN_MODELS, DEFAULT_CONFIG, TASK_FILES
from ocrserve.ppocr.weights import weights_path
from ocrserve.version import __version__

__all__ = ["build_bundled_archive", "default_store_dir", "ensure_bundled_store"]


def default_store_dir() -> Path:
    """``$XDG_CACHE_HOME/ocrserve/model-store`` (``~/.cache/...`` when unset)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ocrserve" / "model-store"


def build_bundled_archive(name: str, folder: Path, *, force: bool = True) -> Path:
    """Write ``folder/NAME.mar`` for a bundled model."""
    task = BUILTIN_MODELS[name]
    roles = TASK_FILES[task]
    files: dict[str, str | os.PathLike[str] | bytes] = {
        arcname: weights_path(role) for role, arcname in roles.items()
    }
    files["config.json"] = json.dumps(DEFAULT_CONFIG, indent=2).encode()
    section = {
        "task": task,
        "engine": "onnx",
        "kind": "ppocr",
        "config": "config.json",
        "files": dict(roles),
        "weights": "PP-OCRv4 from rapidocr-onnxruntime 1.4.4 (Apache-2.0)",
    }
    manifest = new_manifest(name, "1.0", next(iter(roles.values())), section)
    return write_archive(folder / f"{name}.mar", manifest, files, force=force)


def ensure_bundled_store(folder: Path | None = None) -> Path:
    """Make sure every bundled archive exists in ``folder`` and was written by this version."""
    folder = folder or default_store_dir()
    for name in BUILTIN_MODELS:
        path = folder / f"{name}.mar"
        try:
            current = read_manifest(path).archiver_version == f"ocrserve-{__version__}"
        except ArchiveError:
            current = False
        if not current:
            build_bundled_archive(name, folder)
    return folder
