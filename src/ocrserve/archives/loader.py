"""Building a `Predictor` from an extracted archive folder (runs in a worker process).

Nothing in the folder is executed or unpickled: configs are JSON (or MMOCR ``.py`` read as data),
weights are ONNX, safetensors, or a ``.pth`` read with ``weights_only=True``. ONNX networks
(bundled PP-OCR models, ``--runtime onnx`` MMOCR archives) load without importing torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ocrserve.archives.mar import MANIFEST_PATH, parse_manifest
from ocrserve.errors import ArchiveError
from ocrserve.predictor import Predictor

__all__ = ["load_predictor", "usable_device"]


def _inside(folder: Path, name: str) -> Path:
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents:
        raise ArchiveError(f"{name!r} points outside the archive")
    return path


def usable_device(device: str) -> str:
    """``device`` when PyTorch can use it, else "cpu" (with a line in the model log).

    The server hands GPUs out by what the machine shows; a CPU-only PyTorch build, or a GPU
    that PyTorch cannot see, must not stop the model from serving.
    """
    if not device.startswith("cuda"):
        return device
    import torch

    index = int(device.partition(":")[2] or 0)
    if torch.cuda.is_available() and index < torch.cuda.device_count():
        return device
    print(f"{device} requested but PyTorch cannot use it: running on the CPU", flush=True)
    return "cpu"


def load_predictor(
    model_dir: str | Path, threads: int, device: str = "cpu", *, cpu_fallback: bool = False
) -> Predictor:
    """The predictor an archive describes, its PyTorch network on ``device``.

    ONNX Runtime networks (bundled PP-OCR models, ``--runtime onnx`` archives) run on the CPU
    whatever ``device`` says; ``cpu_fallback`` turns an unusable CUDA device into the CPU.
    """
    folder = Path(model_dir)
    manifest = parse_manifest((folder / MANIFEST_PATH).read_bytes(), folder.name)
    section: dict[str, Any] = dict(manifest.ocrserve)
    if manifest.is_legacy_mmocr:
        from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor

        device = usable_device(device) if cpu_fallback else device
        config = _inside(folder, manifest.model_file or "config.py")
        weights = _inside(folder, manifest.serialized_file)
        return MMOCRPredictor.from_files(config, weights, device=device, base_dir=folder, lean=True)
    config = json.loads(_inside(folder, str(section.get("config", "config.json"))).read_text())
    kind, engine = section.get("kind"), section.get("engine")
    if kind == "e2e":
        return _load_composed(folder, section, config, threads, device, cpu_fallback)
    if kind == "ppocr":
        from ocrserve.ppocr import build_ppocr

        files = {role: _inside(folder, name) for role, name in section.get("files", {}).items()}
        return build_ppocr(str(section["task"]), files, config, threads)
    if kind == "mmocr" and engine == "onnx" and "serving" in section:
        from ocrserve.mmocr import load_config
        from ocrserve.mmocr.onnx_predictor import OnnxMMOCRPredictor

        cfg = load_config(_inside(folder, str(section.get("config", "config.json"))))
        return OnnxMMOCRPredictor.from_archive(folder, cfg, section, threads)
    if kind == "mmocr" and engine in ("torch", "onnx"):
        # (onnx: an archive written before ONNX archives dropped the weights; it needs torch)
        _need_torch(folder, engine)
        from ocrserve.mmocr import load_checkpoint, load_config
        from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor

        cfg = load_config(_inside(folder, str(section.get("config", "config.json"))))
        state = load_checkpoint(_inside(folder, manifest.serialized_file)).state_dict
        network = None
        if engine == "onnx":
            from ocrserve.mmocr.onnx_export import load_onnx_network

            device = "cpu"
            model_type = str((cfg.get("model") or {}).get("type"))
            onnx_path = _inside(folder, str(section.get("onnx", "model.onnx")))
            network = load_onnx_network(model_type, onnx_path, threads)
        elif cpu_fallback:
            device = usable_device(device)
        return MMOCRPredictor(
            cfg, state, device=device, base_dir=folder, lean=True, network=network
        )
    raise ArchiveError(f"{folder.name}: no loader for kind {kind!r} with engine {engine!r}")


def _need_torch(folder: Path, engine: str) -> None:
    """`ArchiveError` with the way out when an archive that needs PyTorch meets no PyTorch."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        again = " (or archive it again: --runtime onnx archives now serve without it)"
        raise ArchiveError(
            f"{folder.name}: this archive runs on PyTorch, which is not installed: pip install "
            f"'ocrserve[torch]'{again if engine == 'onnx' else ''}"
        ) from exc


def _load_composed(
    folder: Path,
    section: dict[str, Any],
    config: dict[str, Any],
    threads: int,
    device: str,
    cpu_fallback: bool,
) -> Predictor:
    """An ``ocrserve compose`` archive: each part archive in its sub-folder, loaded as itself."""
    from ocrserve.compose import PARTS
    from ocrserve.compose.end_to_end import ComposedEndToEnd
    from ocrserve.ppocr.rec import PPOCRAngleClassifier

    parts = section.get("parts")
    if not isinstance(parts, dict) or any(role not in parts for role in PARTS):
        raise ArchiveError(f"{folder.name}: the manifest's parts must name {' and '.join(PARTS)}")
    built: dict[str, Predictor] = {}
    for role in PARTS:
        part = _inside(folder, role)
        built[role] = load_predictor(part, threads, device, cpu_fallback=cpu_fallback)
    classifier = None
    if "cls" in parts:
        cls_file = _inside(folder, str(parts["cls"].get("file", "cls/cls.onnx")))
        try:
            classifier = PPOCRAngleClassifier(threads, model=cls_file, **config.get("cls", {}))
        except TypeError as exc:
            raise ArchiveError(f"{folder.name}: config.json 'cls': {exc}") from exc
    try:
        return ComposedEndToEnd(built["det"], built["rec"], classifier, **config.get("e2e", {}))
    except TypeError as exc:
        raise ArchiveError(f"{folder.name}: config.json 'e2e': {exc}") from exc
