#!/usr/bin/env python3
"""FP32 ONNX vs int8 (`ocrserve archive --quantize int8`), side by side in one run.

1. Archives, made here with the `ocrserve archive` command: the bundled PP-OCRv6 networks
   (``--det/--rec/--cls`` from the rapidocr wheel) in FP32 and int8, and MMOCR DBNet-r18 (the
   fixture config + checkpoint of ``../shared/fixtures``: full-size network, not trained
   weights) with ``--runtime onnx`` in FP32 and int8. int8 calibrates on ``--calibration``
   (textset-public's pages by default: settings are chosen there, never on textset-val).
2. Throughput at concurrency 1, in this process (one request after the other, the predictor
   as a worker runs it: pre-processing, network, post-processing): each detector on the first
   ``--images`` pages of textset-val, ``--rounds`` rounds alternating FP32 and int8 (the order
   flips every round); per side the median and the range of the rounds' images/s, and the
   int8/FP32 ratio per round (median, range). The bundled detector has a third side, "int8
   basic": the same quantization after ONNX Runtime's basic graph optimizations only
   (``Int8Settings(prepare="basic")``, the preparation before GELU was fused), built by a
   child process calling `Int8Archiver` (the command has no option for it). Also the network
   alone (ONNX Runtime's ``run`` on the first page's input tensor).
3. Accuracy: the bundled ``ocr`` built from the int8 parts vs FP32 on all of textset-val,
   scored by ``../shared/tools/evaluate.py det --level line`` (end-to-end and detection H-mean).

Usage (from the repository root; ../shared beside the checkout):
  python benchmarks/int8.py [--rounds 5] [--images 5] [--rec-budget 1] [--only bundled dbnet_r18]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness import FIXTURES, RESULTS, SHARED, log, machine, md_table, write_result

from ocrserve.archives.loader import load_predictor
from ocrserve.archives.mar import extract_archive
from ocrserve.int8.calibration import read_pages, record_feeds
from ocrserve.ppocr.weights import weights_path

DBNET = FIXTURES / "textdet" / "dbnet_r18_fpnc_1200e_icdar2015"
PUBLIC = SHARED / "data" / "textset-public"
VAL = SHARED / "data" / "textset-val"
EVALUATE = SHARED / "tools" / "evaluate.py"


def archive(store: Path, *args: str) -> list[Path]:
    """``ocrserve archive ARGS --output-folder STORE --force``; the archives written."""
    before = {p: p.stat().st_mtime for p in store.glob("*.mar")} if store.exists() else {}
    # A child process: building in this process (ONNX export, calibration, quantization) left
    # it slower at FP32 afterwards (1.62x int8/FP32 on the bundled detector instead of the
    # 1.24-1.3x a fresh process measures), so the timings below run in a process that built
    # nothing, as a server's worker does.
    command = [sys.executable, "-m", "ocrserve", "archive", *args]
    code = subprocess.run([*command, "--output-folder", str(store), "--force"]).returncode
    if code != 0:
        sys.exit(f"int8: ocrserve archive {' '.join(args)} failed (exit {code})")
    return [p for p in store.glob("*.mar") if before.get(p) != p.stat().st_mtime]


def build_archives(store: Path, calibration: Path, rec_budget: float, only: Sequence[str]) -> None:
    if "bundled" in only:
        parts = ["--det", str(weights_path("det")), "--rec", str(weights_path("rec")),
                 "--cls", str(weights_path("cls"))]  # fmt: skip
        archive(store, *parts, "--model-name", "fp32")
        archive(store, *parts, "--model-name", "int8", "--quantize", "int8", "--calibration",
                str(calibration), "--accuracy-budget", str(rec_budget))  # fmt: skip
        # The same detector quantized after ONNX Runtime's basic optimizations only (the
        # preparation before `Int8Settings.prepare` = "fused"), as a third side.
        basic = (
            "import sys; from pathlib import Path; "
            "from ocrserve.int8.parts import Int8Archiver; "
            "from ocrserve.int8.quantizer import Int8Settings; "
            "s = Int8Settings(prepare='basic'); "
            "Int8Archiver(sys.argv[1], 100, {'det': s, 'rec': s}).quantize("
            "Path(sys.argv[2]), Path(sys.argv[3]), force=True)"
        )
        code = subprocess.run([sys.executable, "-c", basic, str(calibration),
                               str(store / "fp32_det.mar"),
                               str(store / "int8_basic_det.mar")]).returncode  # fmt: skip
        if code != 0:
            sys.exit(f"int8: the basic-preparation detector failed (exit {code})")
    if "dbnet_r18" in only:
        pair = [str(DBNET / f"{DBNET.name}.py"), str(DBNET / "checkpoint.pth")]
        archive(store, *pair, "--runtime", "onnx", "--model-name", "dbnet_r18_fp32")
        # Not trained weights: its agreement with FP32 says nothing about a trained DBNet's,
        # so it is recorded, not budgeted.
        archive(store, *pair, "--model-name", "dbnet_r18_int8", "--quantize", "int8",
                "--calibration", str(calibration), "--accuracy-budget", "100")  # fmt: skip


def loaded(mar: Path, scratch: Path, threads: int) -> Any:
    folder = scratch / mar.stem
    extract_archive(mar, folder)
    return load_predictor(folder, threads)


def rounds_of(
    sides: dict[str, Callable[[], int]], rounds: int
) -> dict[str, list[float]]:  # fmt: skip
    """Items/s of each side per round; the sides alternate, their order flipping each round."""
    out: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            count = sides[name]()
            out[name].append(count / (time.perf_counter() - start))
        log(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {v[-1]:.3f}/s" for n, v in out.items()))
    return out


def compare(sides: dict[str, Any], pages: list[Any], rounds: int) -> dict[str, Any]:
    """Predictor and network-alone throughput of each side (``fp32`` first), alternating
    rounds; every other side's ratio to ``fp32`` per round."""

    def predict(p: Any) -> Callable[[], int]:
        def run() -> int:
            for page in pages:
                p.predict([page])
            return len(pages)

        return run

    fp32 = sides["fp32"]
    for p in sides.values():  # warm-up
        p.predict([pages[0]])
    whole = rounds_of({name: predict(p) for name, p in sides.items()}, rounds)
    (feed,) = record_feeds(fp32, lambda: fp32.predict([pages[0]]))[1][:1]

    def network(p: Any) -> Callable[[], int]:
        from ocrserve.int8.calibration import network_session_owner

        session = network_session_owner(p).session

        def run() -> int:
            for _ in range(3):
                session.run(None, feed)
            return 3

        return run

    alone = rounds_of({name: network(p) for name, p in sides.items()}, rounds)
    shape = [list(v.shape) for v in feed.values()]
    return {"predictor": stats(whole), "network": stats(alone), "input_shape": shape}


def stats(per_round: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        name: {"median": statistics.median(v), "min": min(v), "max": max(v), "rounds": v}
        for name, v in per_round.items()
    }
    for name, v in per_round.items():
        if name != "fp32":
            ratios = [b / a for a, b in zip(per_round["fp32"], v)]
            out[name]["ratio"] = {
                "median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)
            }  # fmt: skip
    return out


def hmean_on_val(e2e: Any, data: Path, out: Path) -> dict[str, Any]:
    """Run ``e2e`` on every textset-val page; evaluate.py's line-level scores."""
    preds = {}
    for name, page in read_pages(data / "det" / "images"):
        (answer,) = e2e.predict([page])
        preds[Path(name).stem] = answer  # evaluate.py matches predictions by image stem
    out.write_text(json.dumps(preds))
    cmd = [sys.executable, str(EVALUATE), "det", "--level", "line", "--data", str(data),
           "--pred", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    score: dict[str, Any] = json.loads(done.stdout)
    return score


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibration", type=Path, default=PUBLIC / "det" / "images")
    parser.add_argument("--val", type=Path, default=VAL)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rec-budget", type=float, default=1.0,
                        help="--accuracy-budget for the bundled archives")  # fmt: skip
    parser.add_argument("--only", nargs="+", default=["bundled", "dbnet_r18"],
                        choices=["bundled", "dbnet_r18"])  # fmt: skip
    parser.add_argument("--skip-archive", action="store_true", help="reuse the store's archives")
    args = parser.parse_args(argv)
    store = RESULTS / "int8" / "store"
    load_before = os.getloadavg()
    if not args.skip_archive:
        build_archives(store, args.calibration, args.rec_budget, args.only)
    pages = [page for _, page in read_pages(args.val / "det" / "images", args.images)]
    report: dict[str, Any] = {"calibration": str(args.calibration), "loadavg_start": load_before}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        sides_of = {
            "bundled": {"fp32": "fp32_det", "int8": "int8_det", "int8 basic": "int8_basic_det"},
            "dbnet_r18": {"fp32": "dbnet_r18_fp32", "int8": "dbnet_r18_int8"},
        }
        for name in args.only:
            sides = {
                side: loaded(store / f"{mar}.mar", scratch, args.threads)
                for side, mar in sides_of[name].items()
                if (store / f"{mar}.mar").exists()
            }
            log(f"{name}: {', '.join(sides)} on {len(pages)} textset-val pages, "
                f"{args.rounds} rounds")  # fmt: skip
            result = compare(sides, pages, args.rounds)
            result["loadavg"] = os.getloadavg()
            report[name] = result
            for what in ("predictor", "network"):
                r = result[what]
                f = r["fp32"]
                for side in list(sides)[1:]:
                    q = r[side]
                    rows.append([f"{name} {what}, {side}", f"{f['median']:.3f} "
                                 f"({f['min']:.3f}-{f['max']:.3f})",
                                 f"{q['median']:.3f} ({q['min']:.3f}-{q['max']:.3f})",
                                 f"{q['ratio']['median']:.2f}x ({q['ratio']['min']:.2f}-"
                                 f"{q['ratio']['max']:.2f})",
                                 " ".join(f"{x:.2f}" for x in result["loadavg"])])  # fmt: skip
        if "bundled" in args.only:
            for side in ("fp32", "int8"):
                e2e = loaded(store / f"{side}.mar", scratch, args.threads)
                log(f"ocr {side}: textset-val")
                score = hmean_on_val(e2e, args.val, scratch / f"{side}.json")
                report[f"ocr_{side}_textset_val"] = score
            quant = json.loads(
                json.dumps(_manifest(store / "int8.mar")["ocrserve"]["quantization"])
            )
            report["int8_quantization"] = quant
    print(md_table(["", "FP32 images/s (range)", "int8 images/s (range)", "int8/FP32",
                    "load avg (1, 5, 15 min)"], rows))  # fmt: skip
    if "bundled" in args.only:
        a, b = report["ocr_fp32_textset_val"], report["ocr_int8_textset_val"]
        print(md_table(["textset-val, bundled ocr", "FP32", "int8"], [
            [key, f"{a.get(key, float('nan')):.4f}", f"{b.get(key, float('nan')):.4f}"]
            for key in ("e2e_hmean", "det_hmean", "e2e_word_acc")]))  # fmt: skip
    report["machine_end"] = machine()
    log(f"wrote {write_result('int8', report)}")


def _manifest(mar: Path) -> dict[str, Any]:
    import zipfile

    with zipfile.ZipFile(mar) as zf:
        data: dict[str, Any] = json.loads(zf.read("MAR-INF/MANIFEST.json"))
        return data


if __name__ == "__main__":
    main()
