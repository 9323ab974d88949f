"""An archive -> its int8 archive: each ONNX network of each part quantized, measured, recorded.

Which networks an archive has: a PaddleOCR archive its ``det`` and ``rec`` files (the angle
classifier stays FP32: 0.6 MB, a few percent of the time), an MMOCR ``--runtime onnx`` archive its
one network, a composed ``e2e`` archive those of its ``det/`` and ``rec/`` part archives. A
detector is calibrated and measured on the calibration pages; a recognizer on the line crops a
detector cuts from them, FP32 (the archive's own detector when it has one, else the detector of
an earlier archive of the same command, else the bundled PP-OCRv6 detector): what it will be
handed when serving end to end, not whole pages. Every measurement is in the manifest's
``quantization``; a part that disagrees with FP32 beyond the budget refuses the whole archive.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ocrserve.archives.mar import MANIFEST_PATH, Manifest, extract_archive, write_archive
from ocrserve.errors import ArchiveError
from ocrserve.int8.agreement import Agreement, detection_agreement, recognition_agreement
from ocrserve.int8.calibration import line_crops, read_pages, record_feeds
from ocrserve.int8.quantizer import Int8Settings, quantize_onnx
from ocrserve.predictor import Predictor

__all__ = ["DEFAULT_BUDGET", "Int8Archiver"]

#: Disagreement with FP32 allowed by default, in points (H-mean or text agreement x 100).
DEFAULT_BUDGET = 1.0
ROLES = {"det": "textdet", "rec": "textrecog"}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def networks_of(manifest: Manifest) -> dict[str, str]:
    """Role -> the ONNX file to quantize, for one (not composed) archive."""
    section = manifest.ocrserve
    kind, engine, task = section.get("kind"), section.get("engine"), section.get("task")
    if kind == "ppocr":
        files = section.get("files") or {}
        return {role: str(files[role]) for role in ROLES if role in files}
    if kind == "mmocr" and engine == "onnx" and "serving" in section:
        role = "det" if task == "textdet" else "rec"
        return {role: str(section.get("onnx", "model.onnx"))}
    raise ArchiveError(
        f"{manifest.model_name}: int8 quantizes ONNX networks: archive MMOCR models with "
        "--runtime onnx (PaddleOCR archives always are)"
    )


def part_of(predictor: Predictor, role: str) -> Predictor:
    """The detector or recognizer inside an end-to-end predictor (or the predictor itself)."""
    if predictor.task == "e2e":
        part = getattr(predictor, "detector" if role == "det" else "recognizer")
        assert part is not None
        return part
    return predictor


class Int8Archiver:
    """Quantizes the archives of one ``ocrserve archive --quantize int8`` command.

    One instance per command: a network met twice (``NAME_det`` and ``NAME``'s detector) is
    quantized and measured once.
    """

    def __init__(
        self,
        calibration: str | Path,
        budget: float = DEFAULT_BUDGET,
        settings: Mapping[str, Int8Settings] | None = None,
        threads: int = 1,
        progress: Callable[[str], None] = print,
    ) -> None:
        if budget < 0:
            raise ArchiveError(f"--accuracy-budget {budget}: give 0 points or more")
        self.budget = float(budget)
        self.settings = dict(settings or {"det": Int8Settings(), "rec": Int8Settings()})
        self.threads = threads
        self.progress = progress
        self.calibration = Path(calibration)
        named = read_pages(self.calibration)
        self.page_names = [name for name, _ in named]
        self.pages = [page for _, page in named]
        #: (role, FP32 sha256) -> (int8 bytes, record).
        self._done: dict[tuple[str, str], tuple[bytes, dict[str, Any]]] = {}
        self._crop_detector: Predictor | None = None
        self._crops: list[np.ndarray] | None = None
        #: (role, FP32 sha256) -> the agreement measured.
        self._measured: dict[tuple[str, str], dict[str, Any]] = {}

    # -- one archive --------------------------------------------------------------------------

    def quantize(self, source: Path, out: Path, *, force: bool = False) -> Path:
        """Write ``out``, the int8 archive of ``source``; `ArchiveError` beyond the budget."""
        from ocrserve.archives.mar import parse_manifest

        with tempfile.TemporaryDirectory(prefix="ocrserve-int8-") as tmp:
            folder = Path(tmp) / "archive"
            manifest = extract_archive(source, folder)
            section = dict(manifest.ocrserve)
            if section.get("kind") == "e2e":
                parts: dict[str, Any] = {}
                for role in ROLES:  # det first: its FP32 answers make the recognizer's crops
                    part = folder / role
                    part_manifest = parse_manifest((part / MANIFEST_PATH).read_bytes(), role)
                    parts[role] = self._quantize_folder(part, part_manifest)
                    _rewrite_manifest(part, part_manifest, parts[role])
                section["quantization"] = self._summary({"parts": parts})
                for role, record in parts.items():
                    section.setdefault("parts", {})
                    if role in section["parts"]:
                        section["parts"][role] = {
                            **section["parts"][role],
                            "weights": _weights_line(
                                str(section["parts"][role].get("weights", "")), record
                            ),
                        }
                section["weights"] = "; ".join(
                    f"{r} {p.get('model', '')}: {p.get('weights', '')}".replace(" : ", ": ")
                    for r, p in section["parts"].items()
                )
                self._refuse_beyond_budget(manifest.model_name, parts)
            else:
                record = self._quantize_folder(folder, manifest)
                section["quantization"] = self._summary(record)
                section["weights"] = _weights_line(str(section.get("weights", "")), record)
                self._refuse_beyond_budget(manifest.model_name, {"": record})
            files = {
                p.relative_to(folder).as_posix(): p
                for p in sorted(folder.rglob("*"))
                if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST_PATH
            }
            final = dataclasses.replace(manifest, ocrserve=section)
            self.progress(f"writing {out}")
            return write_archive(out, final, dict(files), force=force)

    def _summary(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "precision": "int8",
            "calibration_images": len(self.pages),
            "calibration_folder": self.calibration.name,
            "accuracy_budget_points": self.budget,
            **record,
        }

    def _refuse_beyond_budget(self, name: str, records: Mapping[str, Mapping[str, Any]]) -> None:
        over = []
        for prefix, record in records.items():
            for role, net in record["networks"].items():
                points = float(net["agreement"]["disagreement_points"])
                if points > self.budget:
                    where = f"{prefix} {role}".strip()
                    over.append(f"{where} {net['agreement']['metric']} {points:.2f} points")
        if over:
            raise ArchiveError(
                f"{name}: int8 disagrees with FP32 beyond the accuracy budget of "
                f"{self.budget:g} points on {len(self.pages)} calibration images "
                f"({'; '.join(over)}); no archive written. Archive it in FP32 (without "
                "--quantize), calibrate on more images like those it will serve, or accept "
                "the loss with --accuracy-budget POINTS"
            )

    # -- the networks of one folder ----------------------------------------------------------

    def _quantize_folder(self, folder: Path, manifest: Manifest) -> dict[str, Any]:
        """Quantize the folder's networks in place; their records."""
        from ocrserve.archives.loader import load_predictor

        nets = networks_of(manifest)
        self.progress(f"{manifest.model_name}: loading the FP32 model")
        fp32 = load_predictor(folder, self.threads)
        if "det" in nets:
            self._crop_detector = part_of(fp32, "det")
            self._crops = None
        results: dict[str, tuple[bytes, dict[str, Any]]] = {}
        for role, name in nets.items():
            results[role] = self._quantize_network(folder / name, role, part_of(fp32, role))
        originals = {role: (folder / name).read_bytes() for role, name in nets.items()}
        for role, name in nets.items():
            (folder / name).write_bytes(results[role][0])
        try:
            int8 = load_predictor(folder, self.threads)
            records: dict[str, Any] = {}
            for role, name in nets.items():
                data, record = results[role]
                key = (role, str(record["fp32_sha256"]))
                if key not in self._measured:
                    a, b = part_of(fp32, role), part_of(int8, role)
                    self._measured[key] = self._measure(role, a, b)
                agreement = self._measured[key]
                records[role] = {
                    "file": name,
                    "sha256": _sha256((folder / name).read_bytes()),
                    **record,
                    "agreement": agreement,
                }
                self.progress(
                    f"{manifest.model_name} {role}: {agreement['metric']} "
                    f"{agreement['value']:.4f} vs FP32 ({agreement['disagreement_points']:.2f} "
                    f"points, budget {self.budget:g})"
                )
        except BaseException:
            for role, name in nets.items():
                (folder / name).write_bytes(originals[role])
            raise
        return {"networks": records}

    def _quantize_network(
        self, path: Path, role: str, fp32: Predictor
    ) -> tuple[bytes, dict[str, Any]]:
        fp32_sha = _sha256(path.read_bytes())
        key = (role, fp32_sha)
        if key in self._done:
            return self._done[key]
        settings = self.settings[role]
        if role == "det":
            what = f"{len(self.pages)} calibration pages"
            _, feeds = record_feeds(fp32, lambda: [fp32.predict([p]) for p in self.pages])
        else:
            crops = self._line_crops()
            what = f"{len(crops)} line crops of the calibration pages"
            _, feeds = record_feeds(fp32, lambda: _predict_in_batches(fp32, crops))
        self.progress(f"quantizing {path.name} ({role}) on {len(feeds)} inputs from {what}")
        data, kept, applied = quantize_onnx(path, feeds, settings)
        if applied != settings.prepare:
            self.progress(f"{path.name}: preparation {applied}")
        record: dict[str, Any] = {
            "fp32_sha256": fp32_sha,
            "calibration_inputs": len(feeds),
            "kept_fp32_nodes": kept,
            "settings": settings.to_json(),
            "preparation": applied,
        }
        self._done[key] = (data, record)
        return data, record

    def _line_crops(self) -> list[np.ndarray]:
        if self._crops is None:
            detector = self._crop_detector
            if detector is None:
                from ocrserve.ppocr import build_builtin

                self.progress("no detector in this archive: line crops from the bundled one")
                detector = build_builtin("ppocr_det", self.threads)
            self._crops = line_crops(detector, self.pages)
            if not self._crops:
                raise ArchiveError(
                    f"--calibration {self.calibration}: the detector finds no text lines in "
                    "its images, so there is nothing to calibrate the recognizer on"
                )
        return self._crops

    def _measure(self, role: str, fp32: Predictor, int8: Predictor) -> dict[str, Any]:
        result: Agreement
        if role == "det":
            result = detection_agreement(fp32, int8, self.pages)
            if result.detail["fp32_boxes"] == 0:
                raise ArchiveError(
                    f"--calibration {self.calibration}: the FP32 detector finds no text in its "
                    "images, so int8 cannot be measured against it: give pages with text"
                )
        else:
            result = recognition_agreement(fp32, int8, self._line_crops())
        return result.to_json()


def _predict_in_batches(predictor: Predictor, crops: Sequence[np.ndarray]) -> None:
    for start in range(0, len(crops), 16):
        predictor.predict(list(crops[start : start + 16]))


def _weights_line(weights: str, record: Mapping[str, Any]) -> str:
    marks = ", ".join(
        f"{role} int8 (sha256 {net['sha256'][:12]})" for role, net in record["networks"].items()
    )
    return f"{weights}; {marks}" if weights else marks


def _rewrite_manifest(folder: Path, manifest: Manifest, record: Mapping[str, Any]) -> None:
    """A composed archive's part: its own manifest says it is int8 too."""
    import json

    section = dict(manifest.ocrserve)
    section["quantization"] = {"precision": "int8", **record}
    section["weights"] = _weights_line(str(section.get("weights", "")), record)
    final = dataclasses.replace(manifest, ocrserve=section)
    (folder / MANIFEST_PATH).write_text(json.dumps(final.to_json(), indent=2))
