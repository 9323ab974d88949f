"""The model store: which archives to load, and turning each into a `ModelSpec`.

Runs in the server process and never imports a model library: an archive is checked and
extracted here; a worker loads the extracted folder. Entries follow TorchServe's
``--models``/``load_models``: ``all``, ``NAME=FILE.mar``, ``FILE.mar`` or ``NAME``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ocrserve.archives.mar import Manifest, check_name, extract_archive
from ocrserve.archives.spec import ModelSpec
from ocrserve.errors import ArchiveError, ConfigError, OcrServeError
from ocrserve.ppocr import BUILTIN_MODELS

__all__ = ["LoadFailure", "ModelStore", "mmocr_task", "weights_of"]

log = logging.getLogger(__name__)

#: MMOCR model types by task (0.x names; 1.x uses the same for these architectures).
MMOCR_DETECTORS = {
    "DBNet", "DBNetpp", "PSENet", "PANet", "FCENet", "TextSnake", "DRRG", "MaskRCNNTextDetector",
    "OCRMaskRCNN",
}  # fmt: skip
MMOCR_RECOGNIZERS = {
    "CRNNNet", "CRNN", "SARNet", "SAR", "NRTR", "RobustScanner", "SATRN", "ABINet", "MASTER",
    "SegRecognizer", "EncodeDecodeRecognizer",
}  # fmt: skip


def mmocr_task(config: dict[str, object], where: str) -> str:
    """``textdet`` or ``textrecog`` from an MMOCR config's model type."""
    model = config.get("model")
    kind = model.get("type") if isinstance(model, dict) else None
    if kind in MMOCR_DETECTORS:
        return "textdet"
    if kind in MMOCR_RECOGNIZERS:
        return "textrecog"
    raise ArchiveError(f"{where}: unknown MMOCR model type {kind!r}")


@dataclass(frozen=True)
class LoadFailure:
    """A configured model that could not be loaded, and why."""

    name: str
    url: str
    reason: str


@dataclass
class ModelStore:
    """Locates archives (model store, bundled store) and extracts them into a work folder."""

    root: Path | None
    #: The bundled models' folder, or a function that makes it on first use (so that a
    #: server of the user's own archives never builds, nor needs, the bundled ones).
    bundled: Path | Callable[[], Path] | None = None
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ocrserve-models-")))

    def locate(self, location: str) -> Path:
        """An archive named by ``location``: a file in the model store, or a bundled model."""
        if self.root is not None:
            candidate = Path(location)
            if not candidate.is_absolute():
                if ".." in candidate.parts:
                    raise ArchiveError(f"Relative path is not allowed in url: {location}")
                candidate = self.root / candidate
            for path in (candidate, candidate.with_name(candidate.name + ".mar")):
                if path.is_file():
                    return path
        name = location[:-4] if location.endswith(".mar") else location
        if self.bundled is not None and name in BUILTIN_MODELS:
            if callable(self.bundled):
                self.bundled = self.bundled()
            return self.bundled / f"{name}.mar"
        where = f"model store {self.root}" if self.root else "no model store given"
        raise ArchiveError(
            f"Model not found at: {location} ({where}; bundled models: "
            f"{', '.join(sorted(BUILTIN_MODELS))})"
        )

    def entries(self, load_models: tuple[str, ...]) -> list[tuple[str | None, str]]:
        """``(name override, location)`` pairs for the configured ``load_models``."""
        out: list[tuple[str | None, str]] = []
        for entry in load_models:
            for item in (p.strip() for p in entry.split(",")):
                if not item:
                    continue
                if item == "all":
                    if self.root is None:
                        out.extend((None, name) for name in BUILTIN_MODELS)
                    elif not self.root.is_dir():
                        raise ConfigError(f"model_store={str(self.root)!r}: not a folder")
                    else:
                        out.extend((None, p.name) for p in sorted(self.root.glob("*.mar")))
                    continue
                name, sep, location = item.partition("=")
                out.append((name.strip(), location.strip()) if sep else (None, item))
        return out

    def prepare(self, location: str, name: str | None = None) -> ModelSpec:
        """Check and extract one archive; raise `OcrServeError` naming it and the reason."""
        return self.prepare_file(self.locate(location), name, location)

    def prepare_file(self, path: Path, name: str | None, location: str) -> ModelSpec:
        """Check and extract the archive at ``path`` (found or downloaded)."""
        if name is not None:
            check_name(name, "model name")
        self.work.mkdir(parents=True, exist_ok=True)
        dest = Path(tempfile.mkdtemp(dir=self.work, prefix=f"{path.stem}-"))
        try:
            manifest = extract_archive(path, dest)
            task = self._task(manifest, dest, path.name)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return ModelSpec(
            name=name or manifest.model_name,
            version=manifest.model_version,
            task=task,
            model_dir=str(dest),
            url=location if location.endswith(".mar") else path.name,
            weights=weights_of(manifest),
            options=dict(manifest.ocrserve.get("options") or {}),
            quantization=dict(manifest.ocrserve.get("quantization") or {}),
        )

    @staticmethod
    def _task(manifest: Manifest, folder: Path, where: str) -> str:
        if manifest.task:
            return manifest.task
        from ocrserve.mmocr.config import load_config  # reads the .py config as data

        config_name = manifest.model_file or "config.py"
        return mmocr_task(load_config(folder / config_name), where)

    def prepare_all(
        self, load_models: tuple[str, ...]
    ) -> tuple[list[ModelSpec], list[LoadFailure]]:
        """Every configured model; a bad archive is reported and does not stop the others."""
        specs: list[ModelSpec] = []
        failures: list[LoadFailure] = []
        for name, location in self.entries(load_models):
            try:
                specs.append(self.prepare(location, name))
            except OcrServeError as exc:
                log.error("cannot load %s: %s", location, exc.message)
                failures.append(LoadFailure(name or Path(location).stem, location, exc.message))
            except Exception as exc:  # a bug or an unexpected file: report it, keep going
                message = f"{type(exc).__name__}: {exc}"
                log.error("cannot load %s: %s", location, message)
                failures.append(LoadFailure(name or Path(location).stem, location, message))
        return specs, failures

    def discard(self, spec: ModelSpec) -> None:
        """Delete the folder a prepared model was extracted to (unregistered, or refused)."""
        folder = Path(spec.model_dir)
        if self.work.resolve() in folder.resolve().parents:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def weights_of(manifest: Manifest) -> str:
    """What describe shows as ``weights``: the manifest's own line (ocrserve archives say which
    networks and where from), else the source checkpoint or weight file it names."""
    section = manifest.ocrserve
    for key in ("weights", "source_checkpoint"):
        if isinstance(section.get(key), str) and section[key]:
            return str(section[key])
    return manifest.serialized_file
