#!/usr/bin/env python3
"""CPU latency of every supported MMOCR architecture at its test resolution, full size.

For each config below (MMOCR 0.6.3's own, read from ``--configs``, a checkout's ``configs/``
folder) the full-size network is built with seeded random weights (speed does not depend on
the values) and run the way the server runs it (`MMOCRPredictor(lean=True)`: channels-last
where allowed, unread outputs dropped) on one image: the config's test pipeline decides the
input size. Reported per model: input shape, parameters, the network's forward time and the
whole predict (decode excluded; post-processing of random-weight maps is not representative
for detectors, so the network column is the one to compare), median of ``--n`` runs after a
warm-up, in a fresh process per model with ``--threads`` threads; with ``--onnx`` also the
network on ONNX Runtime where `ocrserve archive --runtime onnx` supports the architecture.

Usage (from the repository root):
  python benchmarks/zoo.py --configs /path/to/mmocr-0.6.3/configs [--threads 2] [--n 5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import FIXTURES, REPO, log, machine, md_table, timed, write_result

#: (config path under configs/, image): the zoo's configs with a fixture at parity.
MODELS = [
    ("textdet/dbnet/dbnet_r18_fpnc_1200e_icdar2015.py", "det_1280x720.jpg"),
    ("textdet/dbnet/dbnet_r50dcnv2_fpnc_1200e_icdar2015.py", "det_1280x720.jpg"),
    ("textdet/dbnetpp/dbnetpp_r50dcnv2_fpnc_1200e_icdar2015.py", "det_1280x720.jpg"),
    ("textdet/panet/panet_r18_fpem_ffm_600e_icdar2015.py", "det_1280x720.jpg"),
    ("textdet/psenet/psenet_r50_fpnf_600e_icdar2015.py", "det_1280x720.jpg"),
    ("textdet/fcenet/fcenet_r50_fpn_1500e_icdar2015.py", "det_1280x720.jpg"),
    ("textdet/textsnake/textsnake_r50_fpn_unet_1200e_ctw1500.py", "det_1280x720.jpg"),
    ("textrecog/crnn/crnn_academic_dataset.py", "rec_160x48.jpg"),
    ("textrecog/sar/sar_r31_parallel_decoder_academic.py", "rec_160x48.jpg"),
    ("textrecog/nrtr/nrtr_r31_1by16_1by8_academic.py", "rec_160x48.jpg"),
    ("textrecog/robust_scanner/robustscanner_r31_academic.py", "rec_160x48.jpg"),
    ("textrecog/satrn/satrn_small.py", "rec_160x48.jpg"),
    ("textrecog/master/master_r31_12e_ST_MJ_SA.py", "rec_160x48.jpg"),
    ("textrecog/abinet/abinet_vision_only_academic.py", "rec_160x48.jpg"),
    ("textrecog/abinet/abinet_academic.py", "rec_160x48.jpg"),
    ("textrecog/sar/sar_r31_sequential_decoder_academic.py", "rec_160x48.jpg"),
    ("textrecog/tps/crnn_tps_academic_dataset.py", "rec_160x48.jpg"),
    ("textrecog/seg/seg_r31_1by16_fpnocr_academic.py", "rec_160x48.jpg"),
]


def _median_ms(fn: Any, n: int) -> float:
    return timed(fn, n, warmup=1)[0]


def _measure(config_path: str, image_path: str, threads: int, n: int, onnx: bool) -> dict[str, Any]:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    sys.path.insert(0, str(REPO))
    import cv2
    import numpy as np
    import torch

    from ocrserve.errors import OcrServeError
    from ocrserve.mmocr import load_config
    from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor
    from ocrserve.mmocr.models import build_model

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    torch.manual_seed(0)
    config = load_config(config_path)
    if "dict_file" in config["model"].get("label_convertor", {}):
        config["model"]["label_convertor"].pop("dict_file")  # the dict_type is enough here
    state = build_model(config["model"]).state_dict()
    predictor = MMOCRPredictor(config, state, lean=True)
    image = cv2.imdecode(np.fromfile(image_path, dtype=np.uint8), cv2.IMREAD_COLOR)
    samples = predictor.preprocess(image)
    out: dict[str, Any] = {
        "input": list(samples[0].img.shape),
        "params_m": sum(p.numel() for p in predictor.model.parameters()) / 1e6,
        "network_ms": _median_ms(lambda: predictor.forward(samples), n),
        "predict_ms": _median_ms(lambda: predictor.predict([image]), n),
    }
    if onnx:
        from ocrserve.mmocr.onnx_export import export_onnx, load_onnx_network, model_type

        full = MMOCRPredictor(config, state)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                export_onnx(full, Path(tmp) / "model.onnx")
                full.network = load_onnx_network(
                    model_type(full), Path(tmp) / "model.onnx", threads
                )
                out["onnx_network_ms"] = _median_ms(lambda: full.forward(samples), n)
            except OcrServeError as exc:
                out["onnx"] = exc.message
    return out


def _child(conn: Any, *args: Any) -> None:
    try:
        conn.send(_measure(*args))
    except Exception as exc:  # report, do not stop the other models
        conn.send({"error": f"{type(exc).__name__}: {exc}"})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=Path, required=True, help="MMOCR 0.6.3's configs/ folder")
    ap.add_argument("--images", type=Path, default=FIXTURES / "images")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--onnx", action="store_true", help="also time ONNX Runtime")
    ap.add_argument("--only", nargs="+", help="only configs whose path contains one of these")
    args = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    rows, report = [], {"threads": args.threads, "n": args.n, "models": {}}
    for rel, image in MODELS:
        if args.only and not any(part in rel for part in args.only):
            continue
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_child,
            args=(child, str(args.configs / rel), str(args.images / image), args.threads,
                  args.n, args.onnx),
        )  # fmt: skip
        proc.start()
        res = parent.recv()
        proc.join()
        stem = Path(rel).stem
        report["models"][stem] = res
        log(f"{stem}: {json.dumps(res)}")
        if "error" in res:
            rows.append([stem, image, "-", "-", res["error"][:60], "-", "-"])
            continue
        onnx = f"{res['onnx_network_ms']:.0f}" if "onnx_network_ms" in res else "-"
        rows.append(
            [stem, image, "x".join(map(str, res["input"][1:])), f"{res['params_m']:.1f}",
             f"{res['network_ms']:.0f}", f"{res['predict_ms']:.0f}", onnx]
        )  # fmt: skip
    m = machine()
    print(
        f"\n### MMOCR zoo on the CPU: {m['cpu']}, {m['cores']} cores, {args.threads} thread(s), "
        f"load average {m['loadavg']}\n"
    )
    headers = ["config", "image", "input HxW", "params (M)", "network ms", "predict ms"]
    print(md_table([*headers, "ONNX Runtime network ms"], rows))
    print(f"\nwrote {write_result('zoo', report)}")


if __name__ == "__main__":
    main()
