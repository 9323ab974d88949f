"""The bundled models as archives: built into a user cache folder on first start.

Each bundled model becomes ``NAME.mar`` like any other archive (ONNX files, config.json and the
manifest); the folder is rebuilt when the ocrserve version that wrote it differs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ocrserve.archives.mar import new_manifest, read_manifest, write_archive
from ocrserve.errors import ArchiveError
from ocrserve.ppocr import BUILTIN_MODELS, DEFAULT_CONFIG, TASK_FILES
from ocrserve.ppocr.weights import weights_path
from ocrserve.version import __version__

__all__ = [
    "build_bundled_archive",
    "bundle_fingerprint",
    "default_store_dir",
    "ensure_bundled_store",
]


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
        "bundle": bundle_fingerprint(name),
    }
    manifest = new_manifest(name, "1.0", next(iter(roles.values())), section)
    return write_archive(folder / f"{name}.mar", manifest, files, force=force)


def bundle_fingerprint(name: str) -> str:
    """What a bundled archive is made of: its settings and its weight files (name, size, time).

    A cached archive with another fingerprint is rebuilt, so that a new weights package or new
    settings take effect without a version bump (and two checkouts sharing the cache cannot
    serve each other's models).
    """
    parts: list[object] = [__version__, DEFAULT_CONFIG]
    for role in sorted(TASK_FILES[BUILTIN_MODELS[name]]):
        path = weights_path(role)
        stat = path.stat()
        parts.append([role, path.name, stat.st_size, int(stat.st_mtime)])
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def ensure_bundled_store(folder: Path | None = None) -> Path:
    """Make sure every bundled archive exists in ``folder`` and is what this install would make."""
    folder = folder or default_store_dir()
    for name in BUILTIN_MODELS:
        path = folder / f"{name}.mar"
        try:
            current = read_manifest(path).ocrserve.get("bundle") == bundle_fingerprint(name)
        except ArchiveError:
            current = False
        if not current:
            build_bundled_archive(name, folder)
    return folder
