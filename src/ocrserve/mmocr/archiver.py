"""``ocrserve archive``: an MMOCR config + checkpoint -> ``NAME.mar`` (mmocr2torchserve's job).

The archive holds the resolved config as JSON, a dictionary file if the config names one, the
manifest, and the network: with ``--runtime torch`` the weights as safetensors (in the model's own
MMOCR 0.x parameter names, whatever names the checkpoint used); with ``--runtime onnx`` the ONNX
file only, and in the manifest what serving it without PyTorch needs to know
(`ocrserve.mmocr.onnx_predictor.serving_spec`), so that it serves with no torch installed. The
model is built and the weights checked against it before anything is written, so a bad pair fails
here, not on the server.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ocrserve.archives.mar import check_name, new_manifest, read_manifest, write_archive
from ocrserve.errors import ArchiveError

__all__ = ["archive_mmocr"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
ONNX_NAME = "model.onnx"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _dict_files(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``label_convertor``-like dict of the model config that names a ``dict_file``."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("dict_file"), str):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config.get("model"))
    return found


def _collision(out: Path, config_path: str | os.PathLike[str], *, named: bool) -> str:
    """Why ``out`` is in the way: which model it holds, and the way out (another name; --force
    only to replace that same model)."""
    try:
        manifest = read_manifest(out)
        section = manifest.ocrserve
        made_from = ", ".join(
            str(section[k]) for k in ("source_config", "source_checkpoint") if section.get(k)
        )
        held = f"model {manifest.model_name} {manifest.model_version}" + (
            f" made from {made_from}" if made_from else ""
        )
    except ArchiveError:
        held = "a file that is not a readable archive"
    how = "" if named else " (the name defaults to the checkpoint's file name)"
    return (
        f"{out} already exists: {held}{how}; give this one another name with --model-name "
        f"NAME (e.g. --model-name {_suggest(config_path)}), or pass --force only to replace "
        "that same model"
    )


def _suggest(config_path: str | os.PathLike[str]) -> str:
    """A valid model name from the config's file name."""
    import re

    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(config_path).stem).lstrip("_.-")
    return stem or "NAME"


def archive_mmocr(
    config_path: str | os.PathLike[str],
    checkpoint_path: str | os.PathLike[str],
    output_folder: str | os.PathLike[str],
    model_name: str | None = None,
    model_version: str = "1.0",
    force: bool = False,
    runtime: str = "torch",
    progress: Callable[[str], None] = _say,
    options: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``output_folder/NAME.mar``; NAME defaults to the checkpoint's stem. The name is
    checked before any work is done. ``options``: request options the archive pins."""
    if runtime not in ("torch", "onnx"):
        raise ArchiveError(f"--runtime {runtime}: expected torch or onnx")
    name = check_name(model_name or Path(checkpoint_path).stem, "model name")
    version = check_name(model_version, "model version")
    out = Path(output_folder) / f"{name}.mar"
    if out.exists() and not force:
        raise ArchiveError(_collision(out, config_path, named=model_name is not None))

    from ocrserve.mmocr import load_checkpoint, load_config
    from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor

    progress(f"reading config {config_path}")
    config = load_config(config_path)
    progress(f"reading checkpoint {checkpoint_path}")
    checkpoint = load_checkpoint(checkpoint_path)
    progress("building the model and checking the weights")
    base_dir = Path(config_path).resolve().parent
    predictor = MMOCRPredictor(config, checkpoint.state_dict, base_dir=base_dir)
    files: dict[str, str | os.PathLike[str] | bytes] = {}
    stored = copy.deepcopy(config)
    for n, node in enumerate(_dict_files(stored)):
        source = Path(node["dict_file"])
        source = source if source.is_file() else base_dir / source
        if not source.is_file():
            raise ArchiveError(f"dict_file {node['dict_file']!r} named by the config is missing")
        arcname = f"dict_{n}{source.suffix or '.txt'}"
        files[arcname] = source
        node["dict_file"] = arcname
    files[CONFIG_NAME] = json.dumps(stored, indent=2).encode()
    section: dict[str, Any] = {"task": predictor.task, "engine": runtime}
    with tempfile.TemporaryDirectory() as tmp:
        if runtime == "onnx":
            from ocrserve.mmocr.onnx_export import export_onnx
            from ocrserve.mmocr.onnx_predictor import SERVING_KEY, serving_spec

            onnx_path = Path(tmp) / ONNX_NAME
            progress("exporting the network to ONNX and checking ONNX Runtime against PyTorch")
            diff = export_onnx(predictor, onnx_path)
            progress(f"ONNX Runtime vs PyTorch on a sample input: max abs diff {diff:.3g}")
            files[ONNX_NAME] = onnx_path
            spec = serving_spec(predictor, stored["model"].get("label_convertor") or {})
            section.update({"onnx": ONNX_NAME, "onnx_max_abs_diff": diff, SERVING_KEY: spec})
            serialized = ONNX_NAME
        else:
            from safetensors.torch import save_file

            tensors = predictor.model.state_dict().items()
            state = {k: v.detach().cpu().contiguous() for k, v in tensors}
            weights = Path(tmp) / WEIGHTS_NAME
            progress(f"writing {len(state)} tensors as safetensors")
            save_file(state, str(weights), metadata={"source": Path(checkpoint_path).name})
            files[WEIGHTS_NAME] = weights
            serialized = WEIGHTS_NAME
        section.update(
            {
                "kind": "mmocr",
                "config": CONFIG_NAME,
                "model_type": str(config["model"].get("type")),
                "source_config": Path(config_path).name,
                "source_checkpoint": Path(checkpoint_path).name,
            }
        )
        manifest = new_manifest(name, version, serialized, section, options)
        progress(f"writing {out}")
        return write_archive(out, manifest, files, force=force)
