#!/usr/bin/env python3
"""PyTorch eager versus ONNX Runtime for the MMOCR fixtures (by default DBNet-r18 and CRNN).

The network alone (`MMOCRPredictor.forward`: stack the pre-processed samples, run, bring the
output back) at the MMOCR test resolution of each config (DBNet-r18: ``det_1280x720.jpg``
resized to fit 1333 x 736; CRNN: ``rec_100x32.png`` at height 32), batch 1 and batch 4 (four
copies), in this process with ``--threads`` intra-op threads on both runtimes. The variants
alternate ``--rounds`` times. ``torch channels-last`` is PyTorch with the weights in NHWC.
``--models`` also takes the other architectures that export (`RUNTIME_MODELS`; slim fixture
weights, so their timings say little about the full-size models).

Usage (from the repository root):
  python benchmarks/runtimes.py [--threads 2] [--n 10] [--rounds 3] [--models dbnet_r18 crnn]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if __name__ == "__main__":  # thread pools read these when numpy / torch / ORT first load
    _threads = "2"
    if "--threads" in sys.argv:
        _threads = sys.argv[sys.argv.index("--threads") + 1]
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = _threads

from typing import Any

from harness import FIXTURE_MODELS, FIXTURES, RESULTS, log, machine, md_table, summary, write_result

#: Every architecture `--runtime onnx` exports -> (task, fixture stem, image).
RUNTIME_MODELS = {
    **FIXTURE_MODELS,
    "dbnetpp": ("textdet", "dbnetpp_r50dcnv2_fpnc_1200e_icdar2015", "det_1280x720.jpg"),
    "panet": ("textdet", "panet_r18_fpem_ffm_600e_icdar2015", "det_1280x720.jpg"),
    "psenet": ("textdet", "psenet_r50_fpnf_600e_icdar2015", "det_1280x720.jpg"),
    "textsnake": ("textdet", "textsnake_r50_fpn_unet_1200e_ctw1500", "det_1280x720.jpg"),
    **{
        name: ("textrecog", stem, "rec_100x32.png")
        for name, stem in [
            ("sar", "sar_r31_parallel_decoder_academic"),
            ("nrtr", "nrtr_r31_1by16_1by8_academic"),
            ("robustscanner", "robustscanner_r31_academic"),
            ("satrn", "satrn_small"),
            ("master", "master_r31_12e_ST_MJ_SA"),
            ("abinet_vision", "abinet_vision_only_academic"),
        ]
    },
}


def build(name: str, threads: int) -> tuple[Any, Any, list[Any], float]:
    """(torch predictor, onnx predictor, [sample], export max diff) for a fixture model."""
    import cv2

    from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor
    from ocrserve.mmocr.onnx_export import export_onnx, load_onnx_network, model_type

    task, stem, image = RUNTIME_MODELS[name]
    folder = FIXTURES / task / stem
    load = lambda: MMOCRPredictor.from_files(folder / f"{stem}.py", folder / "checkpoint.pth")  # noqa: E731
    torch_pred, onnx_pred = load(), load()
    onnx_path = RESULTS / "onnx" / f"{name}.onnx"
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    diff = export_onnx(torch_pred, onnx_path)
    onnx_pred.network = load_onnx_network(model_type(onnx_pred), onnx_path, threads)
    img = cv2.imread(str(FIXTURES / "images" / image), cv2.IMREAD_COLOR)
    samples = torch_pred.preprocess(img)[:1]
    return torch_pred, onnx_pred, samples, diff


def time_forward(predictor: Any, samples: list[Any], n: int) -> list[float]:
    predictor.forward(samples)  # warm-up
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        predictor.forward(samples)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=10, help="timed calls per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--models", nargs="+", default=list(FIXTURE_MODELS), choices=list(RUNTIME_MODELS)
    )
    args = ap.parse_args(argv)

    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    rows, report = [], {}
    for name in args.models:
        log(f"{name}: building, exporting ONNX")
        torch_pred, onnx_pred, samples, diff = build(name, args.threads)
        variants = {"torch eager": torch_pred, "onnxruntime": onnx_pred}
        shape = "x".join(str(d) for d in samples[0].img.shape)
        for batch in (1, 4):
            times: dict[str, list[float]] = {v: [] for v in (*variants, "torch channels-last")}
            for _ in range(args.rounds):
                for label, pred in variants.items():
                    times[label] += time_forward(pred, samples * batch, args.n)
                torch_pred.model.to(memory_format=torch.channels_last)
                times["torch channels-last"] += time_forward(torch_pred, samples * batch, args.n)
                torch_pred.model.to(memory_format=torch.contiguous_format)
            base = summary(times["torch eager"])["p50"]
            for label, ms in times.items():
                s = summary(ms)
                rows.append(
                    [
                        name,
                        shape,
                        batch,
                        label,
                        s["p50"],
                        s["p90"],
                        s["p50"] / batch,
                        f"{s['p50'] / base:.2f}",
                    ]
                )
                report[f"{name}/b{batch}/{label}"] = s
            log(f"{name} batch {batch}: " + ", ".join(f"{r[3]} {r[4]:.1f}" for r in rows[-3:]))
        report[f"{name}/onnx_max_abs_diff"] = diff
    m = machine()
    print(f"\n### Runtimes: network forward, {args.threads} thread(s)\n")
    print(f"{m['cpu']}, {m['cores']} cores, load average now {m['loadavg']}\n")
    headers = [
        "model",
        "input (CxHxW)",
        "batch",
        "runtime",
        "p50 ms",
        "p90 ms",
        "p50 ms / image",
        "p50 / torch eager",
    ]
    print(md_table(headers, rows))
    diffs = ", ".join(f"{k.split('/')[0]} {v:.2g}" for k, v in report.items() if "diff" in k)
    print(f"\nONNX vs PyTorch max abs output difference: {diffs}")
    print(f"\nwrote {write_result('runtimes', {'threads': args.threads, 'results': report})}")


if __name__ == "__main__":
    main()
