#!/usr/bin/env python3
"""Scaling: throughput as workers go from 1 to the number of cores, memory, cold start.

For each worker count (threads per worker: ocrserve's default, every core, unless
``--server-args "--threads-per-worker N"``) a fresh ocrserve serves ``--model``; cold start is
the time from launching the server to
``/ping`` answering 200 (every worker loaded), memory the RSS of the server process and of each
worker once warm. Throughput comes from `loadgen.py` at ``--concurrency`` clients (default
2 x cores, the same for every worker count). Worker counts alternate over ``--rounds``. The
bundled default models (``ocrserve start`` with no models, one worker each) are measured too:
cold start and total RSS.

Usage (from the repository root):
  python benchmarks/scale.py [--model dbnet_r18] [--rounds 2] [--count 24]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness import Ocrserve, load, log, machine, md_table, model_archive, write_result


def measure(location: str, model: str, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    image = args.image or model_archive(args.model)[1]
    extra = ["--default-workers-per-model", str(workers), *shlex.split(args.server_args)]
    server = Ocrserve([location], *extra)
    try:
        info = server.describe(model)
        load(server.predictions(model), [image], workers, 2 * workers, 120)  # warm every worker
        res = load(server.predictions(model), [image], args.concurrency, args.count, 300)
        info = server.describe(model)
        rss = server.rss()
    finally:
        server.stop()
    worker_rss = [w["memoryUsage"] for w in info["workers"]]
    out = {
        "workers": workers,
        "threads": info["cpuThreads"],
        "ready_s": server.ready_s,
        "rps": res["rps"],
        "p50": res["p50"],
        "p99": res["p99"],
        "errors": res["errors"],
        "server_rss": rss.get(server.proc.pid, 0),
        "worker_rss": worker_rss,
        "total_rss": sum(rss.values()),
        "loadavg": res["loadavg"],
    }
    log(
        f"{workers} worker(s) x {out['threads']}: {out['rps']:.2f} req/s, ready "
        f"{out['ready_s']:.1f} s, worker RSS {[round(r / 2**20) for r in worker_rss]} MiB "
        f"(load {res['loadavg']})"
    )
    return out


def defaults(cache: str, warm_cache: Path) -> dict[str, Any]:
    """The bundled models from launch to ready, with an empty archive cache (a fresh
    ``XDG_CACHE_HOME``: the archives are built from the weights first) or ``warm_cache``."""
    home = Path(tempfile.mkdtemp(prefix="ocrserve-xdg-")) if cache == "empty" else warm_cache
    bundled = home / "ocrserve" / "bundled"
    was_empty = not any(bundled.glob("*/*.mar"))
    server = Ocrserve(["ppocr_det", "ppocr_rec", "ocr"], env={"XDG_CACHE_HOME": str(home)})
    try:
        rss = server.rss()
        models = {m: server.describe(m) for m in ("ppocr_det", "ppocr_rec", "ocr")}
    finally:
        server.stop()
        if cache == "empty":
            shutil.rmtree(home, ignore_errors=True)
    out = {
        "cache": cache,
        "cache_was_empty": was_empty,
        "loadavg": round(os.getloadavg()[0], 2),
        "ready_s": server.ready_s,
        "total_rss": sum(rss.values()),
        "server_rss": rss.get(server.proc.pid, 0),
        "worker_rss": {m: [w["memoryUsage"] for w in d["workers"]] for m, d in models.items()},
        "threads": {m: d["cpuThreads"] for m, d in models.items()},
    }
    log(
        f"default models, {cache} archive cache (empty: {was_empty}): ready "
        f"{out['ready_s']:.2f} s, total RSS {out['total_rss'] / 2**20:.0f} MiB "
        f"(load {out['loadavg']})"
    )
    return out


def main(argv: list[str] | None = None) -> None:
    cores = len(os.sched_getaffinity(0))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="dbnet_r18")
    ap.add_argument("--image", type=Path, help="default: the model's usual test image")
    ap.add_argument("--max-workers", type=int, default=cores)
    ap.add_argument("--concurrency", type=int, default=2 * cores)
    ap.add_argument("--count", type=int, default=24, help="requests per measurement")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--server-args", default="", help="extra `ocrserve start` arguments")
    ap.add_argument("--no-defaults", action="store_true", help="skip the bundled-models row")
    ap.add_argument(
        "--cold-start-only", action="store_true", help="only the bundled models' cold start"
    )
    ap.add_argument("--tag", default="", help="suffix of the result file name")
    args = ap.parse_args(argv)

    location, _ = model_archive(args.model)
    model = location.rsplit("/", 1)[-1].removesuffix(".mar")
    counts = [] if args.cold_start_only else list(range(1, args.max_workers + 1))
    runs: dict[int, list[dict[str, Any]]] = {w: [] for w in counts}
    for r in range(args.rounds):
        for w in counts if r % 2 == 0 else counts[::-1]:
            runs[w].append(measure(location, model, w, args))
    default_runs = []
    if not args.no_defaults:
        warm_cache = Path(tempfile.mkdtemp(prefix="ocrserve-xdg-warm-"))
        try:
            defaults("warm", warm_cache)  # fills the warm cache; not reported
            for r in range(args.rounds):
                for cache in ("empty", "warm") if r % 2 == 0 else ("warm", "empty"):
                    default_runs.append(defaults(cache, warm_cache))
        finally:
            shutil.rmtree(warm_cache, ignore_errors=True)

    mib = 2**20
    base = sum(x["rps"] for x in runs[1]) / len(runs[1]) if counts else 1.0
    rows = []
    for w in counts:
        rps = sum(x["rps"] for x in runs[w]) / len(runs[w])
        worker_rss = [r for x in runs[w] for r in x["worker_rss"]]
        rows.append(
            [
                w,
                runs[w][0]["threads"],
                f"{rps:.2f}",
                f"{rps / base:.2f}",
                min(x["p50"] for x in runs[w]),
                f"{max(worker_rss) / mib:.0f}",
                f"{max(x['server_rss'] for x in runs[w]) / mib:.0f}",
                f"{max(x['total_rss'] for x in runs[w]) / mib:.0f}",
                "/".join(f"{x['ready_s']:.1f}" for x in runs[w]),
                "/".join(str(x["loadavg"]) for x in runs[w]),
            ]
        )
    m = machine()
    print(
        f"\n### Scaling: {model}, {args.image.name if args.image else 'default image'}, "
        f"concurrency {args.concurrency}, {args.count} requests/run\n"
    )
    print(f"{m['cpu']}, {m['cores']} cores, load average now {m['loadavg']}\n")
    print(
        ""
        if not counts
        else md_table(
            [
                "workers",
                "threads each",
                "req/s (mean)",
                "vs 1 worker",
                "p50 ms (best)",
                "worker RSS MiB",
                "server RSS MiB",
                "total RSS MiB",
                "cold start s (per run)",
                "load avg",
            ],
            rows,
        )
    )
    if default_runs:
        print("\n### Bundled default models (ppocr_det, ppocr_rec, ocr; 1 worker each)\n")
        print(
            md_table(
                [
                    "run",
                    "archive cache",
                    "cold start to ready s",
                    "total RSS MiB",
                    "server RSS MiB",
                    "worker RSS MiB (det/rec/ocr)",
                    "load avg",
                ],
                [
                    [
                        i + 1,
                        d["cache"],
                        f"{d['ready_s']:.2f}",
                        f"{d['total_rss'] / mib:.0f}",
                        f"{d['server_rss'] / mib:.0f}",
                        "/".join(f"{v[0] / mib:.0f}" for v in d["worker_rss"].values()),
                        d["loadavg"],
                    ]
                    for i, d in enumerate(default_runs)
                ],
            )
        )
    path = write_result(
        f"scale_{model}{args.tag}",
        {"model": model, "concurrency": args.concurrency, "runs": runs, "defaults": default_runs},
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
