#!/usr/bin/env python3
"""Serving overhead: the in-process predictor versus the same request through the server.

In-process runs in a fresh process set up like a worker (same thread count as the served
worker, which describe reports as ``cpuThreads``) and times decode + predict, the worker's whole
job. Served latency comes from `loadgen.py` in a separate process over loopback HTTP, one
client. The two alternate ``--rounds`` times so that machine load hits both alike. Then the
throughput at concurrency 1, 2, 4, 8, 16 (bounded by ``--count`` per level and ``--duration``).

Usage (from the repository root):
  python benchmarks/overhead.py [--model dbnet_r18|crnn|dbnet_r18_onnx|ppocr_det|ppocr_rec|ocr]
                                [--image PATH] [--n 20] [--rounds 3] [--server-args "..."]
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from harness import (
    Ocrserve,
    extracted,
    inprocess_latencies,
    load,
    log,
    machine,
    md_table,
    model_archive,
    summary,
    write_result,
)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="dbnet_r18")
    ap.add_argument("--image", type=Path, help="default: the model's usual test image")
    ap.add_argument("--n", type=int, default=10, help="requests per round and side")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--count", type=int, default=3, help="requests per client per level")
    ap.add_argument("--duration", type=float, default=40.0, help="seconds per level at most")
    ap.add_argument("--server-args", default="", help="extra `ocrserve start` arguments")
    ap.add_argument("--tag", default="", help="suffix of the result file name")
    args = ap.parse_args(argv)

    location, image = model_archive(args.model)
    image = args.image or image
    body = image.read_bytes()
    model = Path(location).stem if location.endswith(".mar") else location
    log(f"model {model}, image {image.name}; starting ocrserve")
    server = Ocrserve([location], *shlex.split(args.server_args))
    try:
        info = server.describe(model)
        threads = int(info["cpuThreads"])
        log(f"ready in {server.ready_s:.1f} s, worker threads {threads}")
        model_dir = extracted(location)
        url = server.predictions(model)
        load(url, [image], 1, 3, 60)  # warm-up
        rounds: list[dict[str, Any]] = []
        for r in range(args.rounds):
            local = inprocess_latencies(model_dir, threads, body, args.n)
            served = load(url, [image], 1, args.n, 300)
            rounds.append({"inprocess": local, "served": served["latencies_ms"]})
            log(
                f"round {r + 1}: in-process p50 {summary(local['total'])['p50']:.1f} ms, "
                f"served p50 {served['p50']:.1f} ms (load {served['loadavg']})"
            )
        levels = []
        for c in args.levels:
            res = load(url, [image], c, args.count * c, args.duration)
            res.pop("latencies_ms")
            levels.append(res)
            log(f"concurrency {c}: {res['rps']:.2f} req/s, p50 {res['p50']:.0f} ms")
    finally:
        server.stop()

    def pooled(key: str, sub: str | None = None) -> list[float]:
        return [v for r in rounds for v in (r[key][sub] if sub else r[key])]

    local_s, predict_s, served_s = (
        summary(pooled("inprocess", "total")),
        summary(pooled("inprocess", "predict")),
        summary(pooled("served")),
    )
    rows = [
        [
            "in-process decode+predict",
            local_s["n"],
            local_s["p50"],
            local_s["p90"],
            local_s["p99"],
            "1.000",
        ],
        [
            "in-process predict only",
            predict_s["n"],
            predict_s["p50"],
            predict_s["p90"],
            predict_s["p99"],
            f"{predict_s['p50'] / local_s['p50']:.3f}",
        ],
        [
            "served over HTTP",
            served_s["n"],
            served_s["p50"],
            served_s["p90"],
            served_s["p99"],
            f"{served_s['p50'] / local_s['p50']:.3f}",
        ],
    ]
    per_round = [
        summary(r["served"])["p50"] / summary(r["inprocess"]["total"])["p50"] for r in rounds
    ]
    m = machine()
    print(f"\n### Overhead: {model} on {image.name}, {threads} thread(s), single client\n")
    print(f"{m['cpu']}, {m['cores']} cores, load average now {m['loadavg']}\n")
    print(md_table(["path", "n", "p50 ms", "p90 ms", "p99 ms", "p50 / in-process"], rows))
    print(f"\nserved/in-process p50 per round: {', '.join(f'{x:.3f}' for x in per_round)}")
    print(f"\n### Throughput: {model}, 1 worker x {threads} thread(s)\n")
    print(
        md_table(
            ["concurrency", "ok", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "load avg"],
            [
                [
                    lv["concurrency"],
                    lv["ok"],
                    lv["errors"],
                    f"{lv['rps']:.2f}",
                    lv["p50"],
                    lv["p90"],
                    lv["p99"],
                    lv["loadavg"],
                ]
                for lv in levels
            ],
        )
    )
    name = f"overhead_{model}{args.tag}"
    path = write_result(
        name,
        {
            "model": model,
            "image": str(image),
            "threads": threads,
            "server_args": args.server_args,
            "ready_s": server.ready_s,
            "inprocess": local_s,
            "predict_only": predict_s,
            "served": served_s,
            "ratio_p50": served_s["p50"] / local_s["p50"],
            "ratio_p50_per_round": per_round,
            "rounds": rounds,
            "throughput": levels,
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
