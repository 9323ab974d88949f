"""Model archives (``.mar``): TorchServe's zip layout, holding nothing that runs.

An ocrserve archive is a zip with ``MAR-INF/MANIFEST.json`` in TorchServe's schema plus an
``ocrserve`` section (task, engine, kind, file names), the model's config as JSON and its weights
as safetensors or ONNX. Archives made by MMOCR's ``mmocr2torchserve`` (``config.py`` + ``.pth`` +
``mmocr_handler.py``) are read too: their config is parsed as data and their weights loaded
weights-only; the handler file is never imported. Extraction refuses absolute paths, ``..``,
links and archives whose content exceeds a size cap.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from ocrserve.errors import ArchiveError, OcrServeError
from ocrserve.version import __version__

__all__ = [
    "ARCHIVE_FORMAT",
    "HANDLER",
    "MANIFEST_PATH",
    "Manifest",
    "extract_archive",
    "read_manifest",
    "write_archive",
]

MANIFEST_PATH = "MAR-INF/MANIFEST.json"
#: The handler named in our manifests: a module shipped in the package (TorchServe interop).
HANDLER = "ocrserve.torchserve_handler"
#: Version of the ``ocrserve`` manifest section.
ARCHIVE_FORMAT = 1
#: MMOCR 0.x's converter names this handler file; such archives are read as data.
LEGACY_HANDLER = "mmocr_handler.py"
MAX_ARCHIVE_BYTES = 4 * 1024**3
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
TASKS = ("textdet", "textrecog", "e2e")


@dataclass(frozen=True)
class Manifest:
    """What ``MAR-INF/MANIFEST.json`` says (TorchServe's fields and ocrserve's section)."""

    model_name: str
    model_version: str
    serialized_file: str
    handler: str
    created_on: str = ""
    archiver_version: str = ""
    runtime: str = "python"
    model_file: str | None = None
    #: ocrserve's section: ``task``, ``engine`` (onnx|torch), ``kind`` (ppocr|mmocr), file names.
    ocrserve: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_legacy_mmocr(self) -> bool:
        return not self.ocrserve and Path(self.handler).name == LEGACY_HANDLER

    @property
    def task(self) -> str | None:
        task = self.ocrserve.get("task")
        return str(task) if task else None

    def to_json(self) -> dict[str, Any]:
        model: dict[str, Any] = {
            "modelName": self.model_name,
            "modelVersion": self.model_version,
            "serializedFile": self.serialized_file,
            "handler": self.handler,
        }
        if self.model_file:
            model["modelFile"] = self.model_file
        return {
            "createdOn": self.created_on,
            "runtime": self.runtime,
            "model": model,
            "archiverVersion": self.archiver_version,
            "ocrserve": dict(self.ocrserve),
        }


def new_manifest(
    name: str,
    version: str,
    serialized_file: str,
    section: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
) -> Manifest:
    """A manifest for an archive written now by this version of ocrserve; ``options`` are the
    request options it pins (`ocrserve.options`), checked against its task."""
    check_name(name, "model name")
    if options:
        section = {**section, "options": pinned_options(section.get("task"), options, name)}
    return Manifest(
        model_name=name,
        model_version=version,
        serialized_file=serialized_file,
        handler=HANDLER,
        created_on=datetime.now().strftime("%d/%m/%Y %H:%M:%S"),
        archiver_version=f"ocrserve-{__version__}",
        ocrserve={"format": ARCHIVE_FORMAT, **section},
    )


def pinned_options(task: Any, options: Any, where: str) -> dict[str, Any]:
    """The options an archive pins, typed; `ArchiveError` naming a bad one."""
    from ocrserve.options import check_pinned

    if not isinstance(options, Mapping):
        raise ArchiveError(f"{where}: the pinned options are not an object")
    try:
        return check_pinned(str(task), options)
    except OcrServeError as exc:
        raise ArchiveError(f"{where}: pinned options: {exc.message}") from exc


def check_name(value: str, what: str) -> str:
    """Model names and versions: letters, digits, ``_ . -``; what TorchServe accepts."""
    if not _NAME_RE.match(value):
        raise ArchiveError(
            f"Invalid {what} {value!r}: use letters, digits, '_', '.' and '-' "
            "(starting with a letter or digit, at most 128 characters)"
        )
    return value


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Validate a manifest's JSON; errors name the archive."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"{where}: {MANIFEST_PATH} is not valid JSON ({exc})") from exc
    model = doc.get("model") if isinstance(doc, dict) else None
    if not isinstance(model, dict):
        raise ArchiveError(f"{where}: {MANIFEST_PATH} has no 'model' object")
    fields = {}
    for key in ("modelName", "serializedFile", "handler"):
        value = model.get(key)
        if not isinstance(value, str) or not value:
            raise ArchiveError(f"{where}: {MANIFEST_PATH} lacks model.{key}")
        fields[key] = value
    version = str(model.get("modelVersion") or "1.0")
    section = doc.get("ocrserve") or {}
    if not isinstance(section, dict):
        raise ArchiveError(f"{where}: the manifest's 'ocrserve' section is not an object")
    manifest = Manifest(
        model_name=check_name(fields["modelName"], "model name"),
        model_version=check_name(version, "model version"),
        serialized_file=fields["serializedFile"],
        handler=fields["handler"],
        created_on=str(doc.get("createdOn", "")),
        archiver_version=str(doc.get("archiverVersion", "")),
        runtime=str(doc.get("runtime", "python")),
        model_file=model.get("modelFile") if isinstance(model.get("modelFile"), str) else None,
        ocrserve=section,
    )
    if section:
        if section.get("format") != ARCHIVE_FORMAT:
            raise ArchiveError(f"{where}: unsupported archive format {section.get('format')!r}")
        if section.get("task") not in TASKS:
            raise ArchiveError(
                f"{where}: unknown task {section.get('task')!r}; expected one of {', '.join(TASKS)}"
            )
        if "options" in section:
            pinned_options(section["task"], section["options"], where)
    elif not manifest.is_legacy_mmocr:
        raise ArchiveError(
            f"{where}: handler {manifest.handler!r} is Python code inside the archive; ocrserve "
            "never runs code from archives (only ocrserve and MMOCR mmocr2torchserve archives load)"
        )
    return manifest


def _check_member(info: zipfile.ZipInfo, where: str) -> PurePosixPath:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or path.is_absolute():
        raise ArchiveError(f"{where}: member {name!r} has an absolute path")
    if ".." in path.parts:
        raise ArchiveError(f"{where}: member {name!r} points outside the archive ('..')")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ArchiveError(f"{where}: member {name!r} is a symbolic link")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise ArchiveError(f"{where}: member {name!r} is not a regular file")
    return path


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"{path.name}: not a readable model archive ({exc})") from exc


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """The manifest of an archive, without extracting anything else."""
    path = Path(path)
    with _open_zip(path) as zf:
        try:
            data = zf.read(MANIFEST_PATH)
        except KeyError:
            raise ArchiveError(f"{path.name}: no {MANIFEST_PATH}") from None
        return parse_manifest(data, path.name)


def extract_archive(
    path: str | os.PathLike[str], dest: str | os.PathLike[str], max_bytes: int = MAX_ARCHIVE_BYTES
) -> Manifest:
    """Check every member, then extract into ``dest``; return the validated manifest."""
    path, dest = Path(path), Path(dest)
    with _open_zip(path) as zf:
        infos = zf.infolist()
        members = [(info, _check_member(info, path.name)) for info in infos]
        declared = sum(info.file_size for info in infos)
        if declared > max_bytes:
            raise ArchiveError(
                f"{path.name}: uncompressed size {declared} bytes exceeds the cap of {max_bytes}"
            )
        if MANIFEST_PATH not in {str(p) for _, p in members}:
            raise ArchiveError(f"{path.name}: no {MANIFEST_PATH}")
        manifest = parse_manifest(zf.read(MANIFEST_PATH), path.name)
        dest.mkdir(parents=True, exist_ok=True)
        written = 0
        for info, rel in members:
            target = dest.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > max_bytes:  # a header may lie about sizes
                            raise ArchiveError(
                                f"{path.name}: content exceeds the cap of {max_bytes}"
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise ArchiveError(
                    f"{path.name}: member {info.filename!r} is corrupt ({exc})"
                ) from exc
    for name in (manifest.serialized_file, manifest.model_file):
        if name and not (dest / name).is_file():
            raise ArchiveError(f"{path.name}: the manifest names {name!r}, which is missing")
    return manifest


def write_archive(
    out_path: str | os.PathLike[str],
    manifest: Manifest,
    files: Mapping[str, str | os.PathLike[str] | bytes],
    *,
    force: bool = False,
) -> Path:
    """Write ``NAME.mar`` atomically; an existing file is an error unless ``force``."""
    out_path = Path(out_path)
    if out_path.exists() and not force:
        raise ArchiveError(f"{out_path} already exists; use --force to overwrite it")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".mar", dir=out_path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp_name, "w") as zf:
            zf.writestr(
                MANIFEST_PATH, json.dumps(manifest.to_json(), indent=2), zipfile.ZIP_DEFLATED
            )
            for arcname, content in files.items():
                _check_member(zipfile.ZipInfo(arcname), out_path.name)
                # Weights are dense floats: deflate costs time and saves little.
                dense = arcname.endswith((".onnx", ".safetensors"))
                method = zipfile.ZIP_STORED if dense else zipfile.ZIP_DEFLATED
                if isinstance(content, bytes):
                    zf.writestr(arcname, content, method)
                else:
                    zf.write(content, arcname, method)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, out_path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return out_path
