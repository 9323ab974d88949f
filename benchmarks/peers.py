#!/usr/bin/env python3
"""ocrserve versus its peers, same machine, same load, alternating runs.

1. TorchServe: the real TorchServe 0.12 (``benchmarks/peers/setup_torchserve.sh`` makes its
   venv) serving the same DBNet-r18 ``.mar`` through ``ocrserve.torchserve_handler``, versus
   ocrserve serving it; both up at once, idle while the other is measured, one worker with the
   same thread count each (see `harness.TorchServe` for its settings). Throughput and p50/p99
   at concurrency 1 and 4 from `loadgen.py` in a separate process, rounds alternating.
2. RapidOCR: rapidocr 3.10's own pipeline (default settings, one engine shared by
   ``--concurrency`` threads in this process) versus ocrserve's ``ocr`` model over HTTP
   (``--concurrency`` clients from `loadgen.py`) on the textset images, images/s, with the
   accuracy of both scored by ``../shared/tools/evaluate.py`` (line-level end-to-end H-mean).

Usage (from the repository root):
  python benchmarks/peers.py [--only torchserve|rapidocr] [--rounds 2] [--limit 60]
                             [--ocr-server-args "--threads-per-worker 2"]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from harness import (
    FIXTURES,
    REPO,
    RESULTS,
    SHARED,
    Ocrserve,
    Server,
    TorchServe,
    fixture_archive,
    load,
    log,
    machine,
    md_table,
    summary,
    torchserve_bin,
    write_result,
)

SETUP = REPO / "benchmarks" / "peers" / "setup_torchserve.sh"


def vs_torchserve(args: argparse.Namespace) -> dict[str, Any]:
    launcher = torchserve_bin()
    if launcher is None:
        out = subprocess.run([str(SETUP)], check=True, capture_output=True, text=True).stdout
        launcher = Path(out.strip().splitlines()[-1])
    archive = fixture_archive("dbnet_r18")
    image = args.det_image
    log("starting ocrserve and TorchServe with dbnet_r18.mar")
    ours = Ocrserve([str(archive)], *shlex.split(args.server_args))
    threads = int(ours.describe("dbnet_r18")["cpuThreads"])
    try:
        theirs = TorchServe(launcher, archive, threads if args.setup == "matched" else None)
    except BaseException:
        ours.stop()
        raise
    servers: list[Server] = [ours, theirs]
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {s.name: {1: [], 4: []} for s in servers}
    try:
        body = image.read_bytes()
        answers = [
            httpx.put(s.predictions("dbnet_r18"), content=body, timeout=120).json() for s in servers
        ]
        same = answers[0] == answers[1]
        log(f"same answer from both: {same}; ready in {ours.ready_s:.1f} / {theirs.ready_s:.1f} s")
        for s in servers:
            load(s.predictions("dbnet_r18"), [image], 2, 4, 60)  # warm-up
        for r in range(args.rounds):
            order = servers if r % 2 == 0 else servers[::-1]
            for s in order:
                for c in (1, 4):
                    res = load(s.predictions("dbnet_r18"), [image], c, args.count * c, 120)
                    runs[s.name][c].append(res)
                    log(
                        f"round {r + 1} {s.name} c={c}: {res['rps']:.2f} req/s p50 "
                        f"{res['p50']:.0f} p99 {res['p99']:.0f} ms (load {res['loadavg']})"
                    )
        rss = {s.name: sum(s.rss().values()) for s in servers}
        workers = {s.name: len(s.workers("dbnet_r18")) for s in servers}
    finally:
        theirs.stop()
        ours.stop()
    rows, report = [], {"setup": args.setup, "threads": threads, "workers": workers}
    report.update(same_answer=same, rss_bytes=rss, runs={})
    for c in (1, 4):
        agg = {}
        for name, by_c in runs.items():
            lat = [v for res in by_c[c] for v in res["latencies_ms"]]
            ok = sum(res["ok"] for res in by_c[c])
            wall = sum(res["wall_s"] for res in by_c[c])
            agg[name] = {
                **summary(lat),
                "rps": ok / wall,
                "errors": sum(res["errors"] for res in by_c[c]),
            }
            report["runs"][f"{name}/c{c}"] = [
                {k: v for k, v in res.items() if k != "latencies_ms"} for res in by_c[c]
            ]
        for name in ("torchserve", "ocrserve"):
            a, base = agg[name], agg["torchserve"]
            rows.append(
                [
                    c,
                    name,
                    a["n"],
                    a["errors"],
                    f"{a['rps']:.2f}",
                    a["p50"],
                    a["p99"],
                    f"{a['rps'] / base['rps']:.2f}",
                    f"{a['p99'] / base['p99']:.2f}",
                ]
            )
        report[f"c{c}"] = agg
    m = machine()
    print(
        f"\n### ocrserve vs TorchServe 0.12: DBNet-r18 (fixture), {image.name}, {args.setup}: "
        f"ocrserve {workers['ocrserve']} worker(s) x {threads} thread(s), TorchServe "
        f"{workers['torchserve']} worker(s)\n"
    )
    print(
        f"{m['cpu']}, {m['cores']} cores, load average now {m['loadavg']}; "
        f"{args.rounds} alternating rounds\n"
    )
    print(
        md_table(
            [
                "concurrency",
                "server",
                "ok",
                "errors",
                "req/s",
                "p50 ms",
                "p99 ms",
                "req/s / TorchServe",
                "p99 / TorchServe",
            ],
            rows,
        )
    )
    print(
        f"\nsame JSON answer from both: {same}; RSS (server + workers): "
        + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in rss.items())
    )
    return report


def vs_rapidocr(args: argparse.Namespace) -> dict[str, Any]:
    import textset_accuracy as ta

    data = ta.Textset(args.data.resolve(), args.limit)
    keys = data.keys("e2e")
    files = [data.file("e2e", k) for k in keys]
    out = RESULTS / "peers_rapidocr"
    out.mkdir(parents=True, exist_ok=True)
    gt_root = data.eval_root(out / "gt_subset")
    rapid = ta.RapidOCRSide(data)
    rapid_e2e = rapid.predictor("e2e")
    rapid_e2e(keys[0])  # warm-up
    log("starting ocrserve with the ocr model")
    ours = Ocrserve(["ocr"], *shlex.split(args.ocr_server_args))
    threads = int(ours.describe("ocr")["cpuThreads"])
    workers = len(ours.describe("ocr")["workers"])
    walls: dict[str, list[float]] = {"rapidocr": [], "ocrserve": []}
    preds: dict[str, dict[str, Any]] = {}
    try:
        load(ours.predictions("ocr"), files[:1], 1, 2, 60)  # warm-up
        for r in range(args.rounds):
            for side in ("rapidocr", "ocrserve") if r % 2 == 0 else ("ocrserve", "rapidocr"):
                if side == "rapidocr":
                    t0 = time.perf_counter()
                    with ThreadPoolExecutor(args.concurrency) as pool:
                        got = list(pool.map(rapid_e2e, keys))
                    walls[side].append(time.perf_counter() - t0)
                    preds[side] = dict(zip(keys, got))
                else:
                    dump = out / "ocrserve_answers.json"
                    res = load(
                        ours.predictions("ocr"),
                        files,
                        args.concurrency,
                        len(files),
                        900,
                        responses=dump,
                    )
                    if res["errors"]:
                        log(f"ocrserve: {res['errors']} failed requests {res['statuses']}")
                    walls[side].append(res["wall_s"])
                    by_file = json.loads(dump.read_text())
                    preds[side] = {k: by_file.get(str(f)) for k, f in zip(keys, files)}
                log(f"round {r + 1} {side}: {len(keys) / walls[side][-1]:.2f} images/s")
    finally:
        ours.stop()
    report: dict[str, Any] = {"concurrency": args.concurrency, "n_images": len(keys)}
    report["ocrserve_threads"], report["ocrserve_workers"] = threads, workers
    rows = []
    for side in ("rapidocr", "ocrserve"):
        path = out / f"{side}_e2e.json"
        path.write_text(json.dumps(preds[side]))
        score = ta.evaluate(args.evaluate, "e2e", gt_root, path)
        ips = [len(keys) / w for w in walls[side]]
        best = max(ips)
        report[side] = {"images_per_s": ips, "score": score}
        rows.append(
            [
                side,
                f"{sum(ips) / len(ips):.2f}",
                f"{best:.2f}",
                f"{score['e2e_hmean']:.4f}",
                f"{score['det_hmean']:.4f}",
                f"{score['e2e_word_acc']:.4f}",
            ]
        )
    ratio = sum(report["ocrserve"]["images_per_s"]) / sum(report["rapidocr"]["images_per_s"])
    report["ratio"] = ratio
    m = machine()
    print(
        f"\n### ocrserve `ocr` vs RapidOCR pipeline: {len(keys)} textset images, "
        f"concurrency {args.concurrency}\n"
    )
    print(
        f"{m['cpu']}, {m['cores']} cores, load average now {m['loadavg']}; ocrserve "
        f"{workers} worker(s) x {threads} thread(s) {args.ocr_server_args}\n"
    )
    print(
        md_table(
            ["side", "images/s (mean)", "images/s (best)", "e2e H-mean", "det H-mean", "word acc"],
            rows,
        )
    )
    print(f"\nocrserve / RapidOCR images/s: {ratio:.2f}")
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["torchserve", "rapidocr"])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--count", type=int, default=10, help="requests per client per run")
    ap.add_argument("--det-image", type=Path, default=FIXTURES / "images" / "det_1280x720.jpg")
    ap.add_argument("--server-args", default="", help="extra ocrserve args (DBNet part)")
    ap.add_argument(
        "--setup",
        choices=["matched", "defaults"],
        default="matched",
        help="TorchServe with ocrserve's worker and thread counts, or at its own defaults",
    )
    ap.add_argument("--ocr-server-args", default="", help="extra ocrserve args (ocr part)")
    ap.add_argument("--concurrency", type=int, default=4, help="RapidOCR comparison")
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "textset-public")
    ap.add_argument("--evaluate", type=Path, default=SHARED / "tools" / "evaluate.py")
    ap.add_argument("--limit", type=int, help="only the first N textset images")
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    if args.only in (None, "torchserve"):
        report["torchserve"] = vs_torchserve(args)
    if args.only in (None, "rapidocr"):
        report["rapidocr"] = vs_rapidocr(args)
    print(f"\nwrote {write_result(f'peers{args.tag}', report)}")


if __name__ == "__main__":
    main()
