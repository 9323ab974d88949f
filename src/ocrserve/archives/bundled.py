"""The bundled models as archives: built into a user cache folder on first start.

Each bundled model becomes ``NAME.mar`` like any other archive (ONNX files, config.json and the
manifest); an archive is rebuilt when the ocrserve version that wrote it, its weights or its
settings differ from this installation's.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from ocrserve.archives.mar import new_manifest, read_manifest, write_archive
from ocrserve.errors import ArchiveError
from ocrserve.ppocr import BUILTIN_MODELS, DEFAULT_CONFIG, TASK_FILES
from ocrserve.ppocr.weights import WEIGHTS_DESCRIPTION, WEIGHTS_REQUIREMENT, weights_path
from ocrserve.version import __version__

__all__ = [
    "build_bundled_archive",
    "bundle_fingerprint",
    "default_store_dir",
    "ensure_bundled_store",
]

#: The generation of the bundled weights (the cache folder's name).
BUNDLED_GENERATION = "PP-OCRv6"


def default_store_dir() -> Path:
    """``$XDG_CACHE_HOME/ocrserve/bundled/PP-OCRv6`` (``~/.cache/...`` when unset).

    One folder per generation of bundled weights: installations of ocrserve that bundle other
    weights (PP-OCRv4 before) keep theirs in another folder, so that two of them on one machine
    never serve each other's archives.
    """
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ocrserve" / "bundled" / BUNDLED_GENERATION


def build_bundled_archive(name: str, folder: Path, *, force: bool = True) -> Path:
    """Write ``folder/NAME.mar`` for a bundled model."""
    task = BUILTIN_MODELS[name]
    roles = TASK_FILES[task]
    files: dict[str, str | os.PathLike[str] | bytes] = {
        arcname: weights_path(role) for role, arcname in roles.items()
    }
    files["config.json"] = json.dumps(DEFAULT_CONFIG, indent=2).encode()
    manifest = new_manifest(name, "1.0", next(iter(roles.values())), bundled_section(name))
    return write_archive(folder / f"{name}.mar", manifest, files, force=force)


def bundled_section(name: str) -> dict[str, Any]:
    """The manifest's ``ocrserve`` section of a bundled model (what describe shows)."""
    task = BUILTIN_MODELS[name]
    roles = TASK_FILES[task]
    nets = " + ".join(WEIGHTS_DESCRIPTION[role] for role in roles)
    return {
        "task": task,
        "engine": "onnx",
        "kind": "ppocr",
        "config": "config.json",
        "files": dict(roles),
        "weights": f"{nets} from {WEIGHTS_REQUIREMENT} (Apache-2.0)",
        "settings": "v6",
        "bundle": bundle_fingerprint(name),
    }


def _is_current(path: Path, name: str) -> bool:
    """Written by this version, with this installation's weights and settings."""
    try:
        manifest = read_manifest(path)
    except ArchiveError:
        return False
    if manifest.archiver_version != f"ocrserve-{__version__}":
        return False
    section = {k: v for k, v in manifest.ocrserve.items() if k != "format"}
    if section != bundled_section(name):
        return False
    with zipfile.ZipFile(path) as zf:
        try:
            return json.loads(zf.read("config.json")) == DEFAULT_CONFIG
        except (KeyError, ValueError):
            return False


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
        if not _is_current(path, name):
            build_bundled_archive(name, folder)
    return folder
