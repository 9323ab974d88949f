#!/usr/bin/env python3
"""MMOCR fixture models on another device (a CUDA GPU) versus the CPU and versus MMOCR 0.6.3.

For every fixture model folder (``<config_stem>/<config_stem>.py``, ``checkpoint.pth`` and
``base/<image>.result.json``, as in ``../shared/fixtures/mmocr-0.6.3``) and every fixture image:
the raw network output on ``--device`` versus the CPU (max abs difference), and the final
result on ``--device`` versus the CPU's and versus the fixture's, with `ocrserve compare`'s
matching and its default tolerances (polygons 0.5 px, scores 1e-4, text identical). Prints a
table and writes JSON. Exit status 0 when every image agrees with the CPU, 1 otherwise.

Usage: python tools/device_parity.py [--fixtures DIR] [--device cuda] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ocrserve.compare.matching import Tolerances, compare_results  # noqa: E402
from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor  # noqa: E402

DEFAULT_FIXTURES = REPO.parent / "shared" / "fixtures" / "mmocr-0.6.3"


def _flat(out: Any) -> list[np.ndarray]:
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _flat(o)]
    return [out.float().cpu().numpy()]


def check_model(
    folder: Path, images: Path, device: str, allow_tf32: bool = False
) -> list[dict[str, Any]]:
    stem = folder.name
    task = "textdet" if folder.parent.name == "textdet" else "textrecog"
    config, checkpoint = folder / f"{stem}.py", folder / "checkpoint.pth"
    on_cpu = MMOCRPredictor.from_files(config, checkpoint, device="cpu")
    on_dev = MMOCRPredictor.from_files(config, checkpoint, device=device, allow_tf32=allow_tf32)
    rows = []
    for result_file in sorted((folder / "base").glob("*.result.json")):
        name = result_file.name.removesuffix(".result.json")
        path = next(images.glob(f"{name}.*"))
        image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
        samples = on_cpu.preprocess(image)
        raw_cpu = [a for o in on_cpu.forward(samples) for a in _flat(o)]
        raw_dev = [a for o in on_dev.forward(samples) for a in _flat(o)]
        raw = max(float(np.abs(a - b).max()) for a, b in zip(raw_cpu, raw_dev))
        expected = json.loads(result_file.read_text())
        got = on_dev.predict([image])[0]
        vs_cpu = compare_results(path.name, task, on_cpu.predict([image])[0], got, Tolerances())
        vs_mmocr = compare_results(path.name, task, expected, got, Tolerances())
        rows.append(
            {
                "model": stem,
                "image": path.name,
                "raw_max_diff_vs_cpu": raw,
                "agrees_with_cpu": vs_cpu.ok,
                "cpu_max_vertex_diff": vs_cpu.max_vertex_diff,
                "cpu_max_score_diff": vs_cpu.max_score_diff,
                "agrees_with_mmocr": vs_mmocr.ok,
                "max_vertex_diff": vs_mmocr.max_vertex_diff,
                "max_score_diff": vs_mmocr.max_score_diff,
                "reasons": vs_mmocr.reasons()[:3] + vs_cpu.reasons()[:3],
            }
        )
    return rows


def _verdict(ok: bool, vertex: float | None, score: float | None) -> str:
    parts = [
        f"vertices {vertex:.2g} px" if vertex is not None else "",
        f"scores {score:.2g}" if score is not None else "no instances",
    ]
    return ("agrees" if ok else "DIFFERS") + ": " + ", ".join(p for p in parts if p)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=Path("device_parity.json"))
    ap.add_argument(
        "--allow-tf32",
        action="store_true",
        help="let cuDNN convolutions use TF32 (PyTorch's default on Ampere and later)",
    )
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available to PyTorch here", file=sys.stderr)
        return 2
    folders = sorted(p.parent for p in args.fixtures.glob("text*/*/checkpoint.pth"))
    if not folders:
        print(f"no fixture models under {args.fixtures}", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    for folder in folders:
        try:
            rows += check_model(folder, args.fixtures / "images", args.device, args.allow_tf32)
        except Exception as exc:  # report every model, whatever breaks
            rows.append({"model": folder.name, "image": "-", "error": repr(exc)})
    print("| model | image | raw vs CPU | results vs CPU | results vs MMOCR 0.6.3 |")
    print("|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | - | error: {r['error'][:80]} | | |")
            continue
        print(
            f"| {r['model']} | {r['image']} | {r['raw_max_diff_vs_cpu']:.2g} | "
            f"{_verdict(r['agrees_with_cpu'], r['cpu_max_vertex_diff'], r['cpu_max_score_diff'])}"
            f" | {_verdict(r['agrees_with_mmocr'], r['max_vertex_diff'], r['max_score_diff'])} |"
        )
    env = {
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "device": args.device,
        "cudnn_allow_tf32": args.allow_tf32,
    }
    if args.device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    args.out.write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    return 0 if all(r.get("agrees_with_cpu") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
