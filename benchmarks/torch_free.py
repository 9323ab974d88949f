#!/usr/bin/env python3
"""Worker memory of ``--runtime onnx`` MMOCR archives served without torch, against torch paths.

The MMOCR parity fixtures' real-size models (DBNet r18 and CRNN, random weights: the sizes and
the code paths are real) are archived three ways and each served by a fresh ocrserve, one worker
per model:

- ``torch``: ``--runtime torch`` (the PyTorch network);
- ``onnx (old)``: what ``--runtime onnx`` wrote before: ONNX file and weights; the worker
  imports torch, loads the weights into the PyTorch model, and runs ONNX Runtime;
- ``onnx``: the ONNX file and the config only (no torch imported), served from this environment
  and from a virtual environment made with ``pip install -e .`` alone (no torch).

After ``--warmup`` requests per model (the model's fixture image, one at a time; the median
latency of those is shown) the table gives each worker's RSS (describe's ``memoryUsage``) and
whether torch is mapped into the worker (``libtorch`` in ``/proc/PID/maps``).

Usage (from the repository root, in the torch environment):
  python benchmarks/torch_free.py [--lean-venv DIR] [--warmup 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from typing import Any

from harness import (
    FIXTURE_MODELS,
    REPO,
    RESULTS,
    STORE,
    Ocrserve,
    fixture_archive,
    load,
    log,
    md_table,
    model_archive,
    write_result,
)

MODELS = ("dbnet_r18", "crnn")


def onnx_archive(name: str) -> Path:
    """The fixture's ``--runtime onnx`` archive, made again if cached from before it dropped the
    weights."""
    path = fixture_archive(name, "onnx")
    with zipfile.ZipFile(path) as zf:
        if "weights.safetensors" in zf.namelist():
            path.unlink()
    return fixture_archive(name, "onnx")


def legacy_onnx_archive(name: str) -> Path:
    """``NAME_onnx_old.mar``: the ONNX archive plus the torch archive's weights, no serving spec."""
    out = STORE / f"{name}_onnx_old.mar"
    if out.is_file():
        return out
    with (
        zipfile.ZipFile(onnx_archive(name)) as onnx_zip,
        zipfile.ZipFile(fixture_archive(name, "torch")) as torch_zip,
        zipfile.ZipFile(out, "w") as zf,
    ):
        manifest = json.loads(onnx_zip.read("MAR-INF/MANIFEST.json"))
        manifest["model"]["modelName"] = out.stem
        manifest["model"]["serializedFile"] = "weights.safetensors"
        manifest["ocrserve"].pop("serving", None)
        zf.writestr("MAR-INF/MANIFEST.json", json.dumps(manifest))
        for member in onnx_zip.namelist():
            if member != "MAR-INF/MANIFEST.json":
                zf.writestr(member, onnx_zip.read(member))
        zf.writestr("weights.safetensors", torch_zip.read("weights.safetensors"))
    return out


def lean_python(folder: Path) -> str:
    """A virtual environment with ocrserve installed without extras (no torch), made once."""
    python = folder / "bin" / "python"
    if not python.is_file():
        log(f"making {folder} (pip install -e {REPO})")
        venv.create(folder, with_pip=True, clear=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", str(REPO)], check=True)
    if subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode == 0:
        sys.exit(f"{folder} has torch: give --lean-venv a venv without it")
    return str(python)


def torch_mapped(pid: int) -> bool:
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def measure(setup: str, archives: dict[str, Path], warmup: int, python: str | None) -> list[Any]:
    server = Ocrserve([f"{m}={p}" for m, p in archives.items()], python=python)
    rows = []
    try:
        for model, path in archives.items():
            image = model_archive(model)[1]
            res = load(server.predictions(model), [image], 1, warmup, 300)
            worker = server.describe(model)["workers"][0]
            rows.append([model, setup, f"{path.stat().st_size / 1e6:.0f}",
                         f"{worker['memoryUsage'] / 2**20:.0f}",
                         "yes" if torch_mapped(worker["pid"]) else "no",
                         f"{res['p50']:.0f}", res["errors"]])  # fmt: skip
            log(f"{setup} {model}: {rows[-1]}")
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lean-venv", type=Path, default=RESULTS / "lean-venv")
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    lean = lean_python(args.lean_venv.resolve())
    setups: list[tuple[str, dict[str, Path], str | None]] = [
        ("torch", {m: fixture_archive(m, "torch") for m in MODELS}, None),
        ("onnx (old): torch + weights + ORT", {m: legacy_onnx_archive(m) for m in MODELS}, None),
        ("onnx, torch venv", {m: onnx_archive(m) for m in MODELS}, None),
        ("onnx, venv without torch", {m: onnx_archive(m) for m in MODELS}, lean),
    ]
    rows = []
    for setup, archives, python in setups:
        named = {m if setup == "torch" else f"{m}_onnx": p for m, p in archives.items()}
        rows += measure(setup, named, args.warmup, python)
    rows.sort(key=lambda r: MODELS.index(r[0].removesuffix("_onnx")))
    headers = ["model", "serving", "archive MB", "worker RSS MiB", "torch mapped", "p50 ms",
               "errors"]  # fmt: skip
    print(md_table(headers, rows))
    write_result("torch_free", {"headers": headers, "rows": rows, "models": FIXTURE_MODELS})


if __name__ == "__main__":
    main()
