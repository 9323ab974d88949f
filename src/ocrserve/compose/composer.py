"""``ocrserve compose``: a detector archive + a recognizer archive (+ an angle classifier) ->
one end-to-end ``NAME.mar``.

Each part is an existing ``.mar`` of either family: ``ocrserve archive CONFIG CHECKPOINT`` makes
MMOCR's, ``ocrserve archive --det/--rec`` PaddleOCR's (``NAME_det.mar``, ``NAME_rec.mar``), and
MMOCR's own ``mmocr2torchserve`` archives work too; a PaddleOCR ``.onnx`` file or an MMOCR
CONFIG CHECKPOINT pair is archived first, as ``ocrserve archive`` would (``ocrserve archive
--det ... --rec ...`` with any part that is not a PaddleOCR ONNX file composes too). The
classifier is a PaddleOCR angle classifier ONNX file (there are no classifier archives). Every
part is extracted with the usual checks and its predictor built before anything is written, so
a part of the wrong task, an unreadable file or a model that does not load is refused here, with
the reason. The composed archive holds each
part archive's files, manifest included, in ``det/`` and ``rec/`` (the classifier as
``cls/cls.onnx``), the composition's settings in ``config.json`` and a manifest whose
``ocrserve`` section is ``kind: e2e`` with the ``parts``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ocrserve.archives.loader import load_predictor
from ocrserve.archives.mar import Manifest, check_name, extract_archive, new_manifest, write_archive
from ocrserve.archives.store import weights_of
from ocrserve.compose import PARTS
from ocrserve.errors import ArchiveError, OcrServeError
from ocrserve.predictor import Predictor

__all__ = ["Source", "compose_archive"]

#: A part: its archive, a PaddleOCR ONNX file, or an MMOCR CONFIG CHECKPOINT pair (the last two
#: are archived first, as ``ocrserve archive`` would).
Source = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

CONFIG_NAME = "config.json"
CLS_NAME = "cls/cls.onnx"
WHAT = {"textdet": "text detector", "textrecog": "text recognizer", "e2e": "end-to-end OCR"}
HOW = {
    "det": "a text detector archive (ocrserve archive DET_CONFIG DET_CHECKPOINT, or "
    "ocrserve archive --det DET.onnx: NAME_det.mar)",
    "rec": "a text recognizer archive (ocrserve archive REC_CONFIG REC_CHECKPOINT, or "
    "ocrserve archive --rec REC.onnx: NAME_rec.mar)",
}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _part(role: str, source: Path, dest: Path) -> tuple[Manifest, Predictor]:
    """Extract and load one part archive; refuse it, naming the option, when it cannot serve."""
    where = f"--{role} {source}"
    if not source.is_file():
        raise ArchiveError(f"{where}: no such file; --{role} takes {HOW[role]}")
    try:
        manifest = extract_archive(source, dest)
    except ArchiveError as exc:
        raise ArchiveError(f"{where}: {exc.message}; --{role} takes {HOW[role]}") from exc
    want = PARTS[role]
    if manifest.task is not None and manifest.task != want:
        raise ArchiveError(
            f"{where}: model {manifest.model_name} is {WHAT.get(manifest.task, manifest.task)} "
            f"({manifest.task}); --{role} takes {HOW[role]}"
        )
    try:
        predictor = load_predictor(dest, threads=1)
    except OcrServeError as exc:
        raise ArchiveError(f"{where}: does not load ({exc.message})") from exc
    if predictor.task != want:  # MMOCR's own archives say their task only in the config
        raise ArchiveError(
            f"{where}: model {manifest.model_name} is {WHAT.get(predictor.task, predictor.task)} "
            f"({predictor.task}); --{role} takes {HOW[role]}"
        )
    return manifest, predictor


def _as_archive(role: str, source: Source, folder: Path, progress: Callable[[str], None]) -> Path:
    """The part's archive: the ``.mar`` given, or a PaddleOCR ``.onnx`` file or an MMOCR CONFIG
    CHECKPOINT pair archived now into ``folder`` (as ``ocrserve archive`` would)."""
    values = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if len(values) == 1 and Path(values[0]).suffix.lower() == ".onnx":
        from ocrserve.ppocr.paddle_archiver import archive_paddle

        onnx = Path(values[0])
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", onnx.stem).lstrip("_.-")[:120] or role
        try:
            det, rec = (onnx, None) if role == "det" else (None, onnx)
            (out,) = archive_paddle(folder, det=det, rec=rec, model_name=name, progress=progress)
        except OcrServeError as exc:
            raise ArchiveError(f"--{role} {onnx}: {exc.message}") from exc
        return out
    if len(values) == 1:
        return Path(values[0])
    if len(values) != 2:
        raise ArchiveError(
            f"--{role} takes one archive (.mar) or PaddleOCR .onnx, or an MMOCR CONFIG "
            f"CHECKPOINT pair, not {len(values)} values"
        )
    from ocrserve.mmocr.archiver import archive_mmocr

    config, checkpoint = (Path(v) for v in values)
    where = f"--{role} {config} {checkpoint}"
    for path in (config, checkpoint):
        if not path.is_file():
            raise ArchiveError(f"{where}: {path} does not exist")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", config.stem).lstrip("_.-")[:128] or role
    try:
        return archive_mmocr(config, checkpoint, folder, name, progress=progress)
    except OcrServeError as exc:
        raise ArchiveError(f"{where}: {exc.message}") from exc


def compose_archive(
    output_folder: str | os.PathLike[str],
    *,
    det: Source,
    rec: Source,
    cls: str | os.PathLike[str] | None = None,
    model_name: str,
    model_version: str = "1.0",
    rec_batch: int = 16,
    drop_score: float = 0.0,
    force: bool = False,
    progress: Callable[[str], None] = _say,
    options: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``output_folder/NAME.mar``: the parts checked and composed (see the module doc).
    ``options``: request options the archive pins."""
    from ocrserve.compose.end_to_end import ComposedEndToEnd
    from ocrserve.ppocr.paddle_archiver import check_onnx, weights_line
    from ocrserve.ppocr.rec import PPOCRAngleClassifier

    name = check_name(model_name, "model name")
    version = check_name(model_version, "model version")
    out = Path(output_folder) / f"{name}.mar"
    if out.exists() and not force:
        raise ArchiveError(f"{out} already exists; use --force to overwrite it")
    if rec_batch < 1:
        raise ArchiveError(f"--rec-batch {rec_batch}: give at least 1")
    config: dict[str, Any] = {"e2e": {"rec_batch": rec_batch, "drop_score": drop_score}}
    with tempfile.TemporaryDirectory() as tmp:
        manifests: dict[str, Manifest] = {}
        predictors: dict[str, Predictor] = {}
        for role, source in (("det", det), ("rec", rec)):
            mar = _as_archive(role, source, Path(tmp) / f"mmocr-{role}", progress)
            progress(f"checking the {WHAT[PARTS[role]]} {mar}")
            manifests[role], predictors[role] = _part(role, mar, Path(tmp) / role)
        classifier = None
        parts: dict[str, dict[str, Any]] = {
            role: {
                "model": m.model_name,
                "version": m.model_version,
                "task": PARTS[role],
                "kind": str(m.ocrserve.get("kind", "mmocr")),
                "weights": weights_of(m),
            }
            for role, m in manifests.items()
        }
        if cls is not None:
            progress(f"checking the angle classifier {cls}")
            try:
                facts = check_onnx(cls, "cls")
            except ArchiveError as exc:
                raise ArchiveError(f"--cls: {exc.message}") from exc
            config["cls"] = {"batch_num": 6, "thresh": 0.9}
            classifier = PPOCRAngleClassifier(1, model=facts.path, **config["cls"])
            parts["cls"] = {"file": CLS_NAME, "kind": "ppocr", "weights": weights_line(
                {"cls": facts})}  # fmt: skip
        progress("composing the parts and running them once on a blank page")
        composed = ComposedEndToEnd(predictors["det"], predictors["rec"], classifier,
                                    **config["e2e"])  # fmt: skip
        try:
            composed.predict([np.full((64, 256, 3), 255, np.uint8)])
        except Exception as exc:  # any part's own error class; the message is what matters
            raise ArchiveError(f"the composition fails on a blank page ({exc})") from exc
        files: dict[str, str | os.PathLike[str] | bytes] = {}
        for role in manifests:
            root = Path(tmp) / role
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                files[f"{role}/{path.relative_to(root).as_posix()}"] = path
        if cls is not None:
            files[CLS_NAME] = Path(cls)
        files[CONFIG_NAME] = json.dumps(config, indent=2).encode()
        section = {
            "task": "e2e",
            "engine": "parts",
            "kind": "e2e",
            "config": CONFIG_NAME,
            "parts": parts,
            "weights": "; ".join(
                f"{role} {part['model']}: {part['weights']}" if "model" in part else part["weights"]
                for role, part in parts.items()
            ),
        }
        serialized = f"det/{manifests['det'].serialized_file}"
        progress(f"writing {out}")
        manifest = new_manifest(name, version, serialized, section, options)
        return write_archive(out, manifest, files, force=force)
