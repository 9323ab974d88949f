"""``ocrserve archive --det/--rec/--cls``: PaddleOCR ONNX models -> ``.mar`` files.

PP-OCRv3 to v6 exports share one contract: a DB detector ``N x 3 x H x W -> N x 1 x H x W``
(probabilities at input size), a CTC recognizer ``N x 3 x 48 x W -> N x T x C`` (C = the
dictionary + the blank + a space) and an angle classifier ``N x 3 x 48 x 192 -> N x 2``. Each
file is opened with ONNX Runtime and run once on a blank input before anything is written, so a
file that is not ONNX, has the wrong input shape or a dictionary that does not fit the output is
refused here, with the reason, not on the server. One archive per task the files allow:
``NAME_det`` (detector), ``NAME_rec`` (recognizer) and ``NAME`` (end to end: both, plus the
classifier when given).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ocrserve.archives.mar import check_name, new_manifest, write_archive
from ocrserve.errors import ArchiveError, ModelLoadError, OcrServeError
from ocrserve.options import options_for

__all__ = ["archive_paddle", "check_onnx"]

CONFIG_NAME = "config.json"
#: Role -> file name inside the archive (the bundled archives use the same names).
ARCNAMES = {"det": "det.onnx", "rec": "rec.onnx", "cls": "cls.onnx", "dict": "rec_dict.txt"}
#: What each role's network must answer for a blank input (shape -> expected output).
PROBES: dict[str, tuple[tuple[int, int, int, int], str]] = {
    "det": ((1, 3, 64, 96), "1 x 1 x 64 x 96 (a DB probability map at input size)"),
    "rec": ((1, 3, 48, 320), "1 x T x C (CTC probabilities per step)"),
    "cls": ((1, 3, 48, 192), "1 x 2 (scores for 0 and 180 degrees)"),
}
WHAT = {"det": "detector", "rec": "recognizer", "cls": "angle classifier"}
WANTS = {
    "det": "N x 3 x H x W (H and W free)",
    "rec": "N x 3 x 48 x W (W free)",
    "cls": "N x 3 x 48 x 192",
}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class OnnxFacts:
    """What the check learnt about one network."""

    path: Path
    sha256: str
    #: Output classes of a recognizer (C of N x T x C); 0 for the other roles.
    classes: int = 0
    #: The recognizer's dictionary from its ONNX metadata, when it has one.
    metadata_dictionary: tuple[str, ...] | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_onnx(path: str | os.PathLike[str], role: str) -> OnnxFacts:
    """Open ``path`` as a PaddleOCR ``role`` network and run it once; refuse it with the reason."""
    from ocrserve.onnx_session import create_session
    from ocrserve.ppocr.rec import model_dictionary

    path = Path(path)
    what = f"{WHAT[role]} {path.name}"
    if not path.is_file():
        raise ArchiveError(f"{what}: no such file")
    try:
        session = create_session(path, 1)
    except Exception as exc:  # ONNX Runtime raises its own classes (InvalidProtobuf, Fail, ...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArchiveError(f"{what} is not a usable ONNX model ({reason})") from exc
    inputs = session.get_inputs()
    shape = list(inputs[0].shape) if inputs else []
    probe, expected = PROBES[role]
    if _bad_input(role, len(inputs), shape):
        raise ArchiveError(
            f"{what}: input shape {_show(shape)} ({len(inputs)} inputs); a PaddleOCR "
            f"{WHAT[role]} takes one image batch {WANTS[role]}"
        )
    try:
        out = session.run(None, {inputs[0].name: np.zeros(probe, np.float32)})[0]
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArchiveError(f"{what}: fails on a {_show(list(probe))} input ({reason})") from exc
    out = np.asarray(out)
    ok = {
        "det": out.shape == (1, 1, probe[2], probe[3]),
        "rec": out.ndim == 3 and out.shape[0] == 1 and out.shape[2] > 1,
        "cls": out.shape == (1, 2),
    }[role]
    if not ok:
        raise ArchiveError(
            f"{what}: answers {_show(list(out.shape))} for a {_show(list(probe))} input; "
            f"a PaddleOCR {WHAT[role]} answers {expected}"
        )
    classes = int(out.shape[2]) if role == "rec" else 0
    dictionary = model_dictionary(session) if role == "rec" else None
    return OnnxFacts(
        path=path,
        sha256=_sha256(path),
        classes=classes,
        metadata_dictionary=tuple(dictionary) if dictionary is not None else None,
    )


def _bad_input(role: str, count: int, shape: list[Any]) -> bool:
    """Whether the declared input breaks the contract (free dimensions are checked by running)."""
    if count != 1 or len(shape) != 4 or isinstance(shape[1], int) and shape[1] != 3:
        return True
    height, width = shape[2], shape[3]
    if role == "det":  # any H x W: images are resized to multiples of 32, not to one size
        return isinstance(height, int) or isinstance(width, int)
    if role == "rec":  # 48 high, any width (the widest crop of a batch)
        return isinstance(height, int) and height != 48 or isinstance(width, int)
    return any(isinstance(d, int) and d != want for d, want in ((height, 48), (width, 192)))


def _show(shape: list[Any]) -> str:
    return " x ".join(str(d) if isinstance(d, int) else "?" for d in shape) or "(none)"


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def weights_line(facts: Mapping[str, OnnxFacts]) -> str:
    """The manifest's ``weights``: each network's file name and the start of its sha256."""
    return ", ".join(f"{role} {f.path.name} (sha256 {f.sha256[:12]})" for role, f in facts.items())


def archive_paddle(
    output_folder: str | os.PathLike[str],
    *,
    det: str | os.PathLike[str] | None = None,
    rec: str | os.PathLike[str] | None = None,
    cls: str | os.PathLike[str] | None = None,
    dict_file: str | os.PathLike[str] | None = None,
    model_name: str = "ppocr",
    model_version: str = "1.0",
    force: bool = False,
    settings: str = "v6",
    config: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] = _say,
    options: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write ``NAME_det.mar``, ``NAME_rec.mar`` and ``NAME.mar`` (end to end) as the files allow.
    ``options``: request options to pin, each in the archives whose task takes it."""
    from ocrserve.ppocr import SETTINGS_PRESETS, build_ppocr
    from ocrserve.ppocr.rec import dictionary_mismatch, read_dictionary

    if det is None and rec is None:
        raise ArchiveError("PaddleOCR archives need --det, --rec or both")
    if cls is not None and (det is None or rec is None):
        raise ArchiveError("--cls is used end to end only: give --det and --rec with it")
    if dict_file is not None and rec is None:
        raise ArchiveError("--dict belongs to a recognizer: give --rec with it")
    if settings not in SETTINGS_PRESETS:
        raise ArchiveError(
            f"--ppocr-settings {settings}: expected one of {', '.join(sorted(SETTINGS_PRESETS))}"
        )
    name = check_name(model_name, "model name")
    version = check_name(model_version, "model version")
    written_tasks = ["textdet"] * (det is not None) + ["textrecog"] * (rec is not None)
    written_tasks += ["e2e"] * (det is not None and rec is not None)
    for option in options or {}:
        if not any(option in options_for(task) for task in written_tasks):
            raise ArchiveError(
                f"--option {option}: no archive written here ({', '.join(written_tasks)}) takes it"
            )
    merged = _merge(SETTINGS_PRESETS[settings], config or {})
    sources = {"det": det, "rec": rec, "cls": cls}
    facts: dict[str, OnnxFacts] = {}
    for role, source in sources.items():
        if source is not None:
            progress(f"checking the {WHAT[role]} {source}")
            facts[role] = check_onnx(source, role)
    files: dict[str, Path] = {role: f.path for role, f in facts.items()}
    if "rec" in facts:
        rec_facts = facts["rec"]
        if dict_file is not None:
            dict_path = Path(dict_file)
            try:
                chars = read_dictionary(dict_path)
            except (OSError, UnicodeDecodeError) as exc:
                raise ArchiveError(f"dictionary {dict_path.name}: cannot read it ({exc})") from exc
            files["dict"] = dict_path
            source_of_dict = dict_path.name
        elif rec_facts.metadata_dictionary is not None:
            chars = list(rec_facts.metadata_dictionary)
            source_of_dict = "the ONNX metadata"
        else:
            raise ArchiveError(
                f"recognizer {rec_facts.path.name} has no 'character' metadata: give its "
                "dictionary with --dict FILE (one character per line)"
            )
        space = bool(merged.get("rec", {}).get("use_space_char", True))
        if len(chars) + 1 + space != rec_facts.classes:
            why = dictionary_mismatch(len(chars), space, rec_facts.classes)
            raise ArchiveError(
                f"dictionary from {source_of_dict} does not fit recognizer "
                f"{rec_facts.path.name}: {why}"
            )
        progress(f"dictionary: {len(chars)} characters from {source_of_dict}")
    tasks: list[tuple[str, str, list[str]]] = []
    if "det" in files:
        tasks.append((f"{name}_det", "textdet", ["det"]))
    if "rec" in files:
        tasks.append((f"{name}_rec", "textrecog", ["rec", "dict"]))
    if "det" in files and "rec" in files:
        tasks.append((name, "e2e", ["det", "cls", "rec", "dict"]))
    outs = [Path(output_folder) / f"{model}.mar" for model, _, _ in tasks]
    for out in outs:
        if out.exists() and not force:
            raise ArchiveError(f"{out} already exists; use --force to overwrite it")
    written = []
    for (model, task, roles), out in zip(tasks, outs):
        task_files = {role: files[role] for role in roles if role in files}
        progress(f"building {model} ({task}) with the archive's settings")
        try:
            build_ppocr(task, task_files, merged, 1)
        except (ModelLoadError, ValueError) as exc:
            message = exc.message if isinstance(exc, OcrServeError) else str(exc)
            raise ArchiveError(f"{model}: {message}") from exc
        section = {
            "task": task,
            "engine": "onnx",
            "kind": "ppocr",
            "config": CONFIG_NAME,
            "files": {role: ARCNAMES[role] for role in task_files},
            "weights": weights_line({r: facts[r] for r in roles if r in facts}),
            "settings": settings,
        }
        content: dict[str, str | os.PathLike[str] | bytes] = {
            ARCNAMES[role]: path for role, path in task_files.items()
        }
        content[CONFIG_NAME] = json.dumps(merged, indent=2).encode()
        pinned = {k: v for k, v in (options or {}).items() if k in options_for(task)}
        manifest = new_manifest(model, version, ARCNAMES[roles[0]], section, pinned)
        progress(f"writing {out}")
        written.append(write_archive(out, manifest, content, force=force))
    return written
