#!/usr/bin/env python3
"""The Ray engine against the local one, on the same machine.

1. Overhead: ``--model`` (default ppocr_rec, one worker) served by the local engine and by the
   Ray engine on a one-node Ray cluster started here (up for both engines' runs), ``--rounds``
   alternating rounds (the order flips every round; each round starts its server, warms it up
   with 10 requests and stops it after): one client at concurrency 1 (``--count`` requests),
   then at ``--concurrency`` (default 8). Printed: per engine the median p50 and throughput of
   the rounds, and Ray's ratio to local per round (median, min-max). The target: Ray p50 <=
   1.15x local at concurrency 1.
2. Replicas: ``--compute-model`` (default ppocr_det, one thread per worker) on the Ray engine
   with 1 then 2 replicas, throughput at ``--concurrency``.

Usage (from the repository root, not from benchmarks/, whose ray.py would shadow Ray; needs
the ocrserve[ray] extra):
  python benchmarks/ray.py [--rounds 5] [--count 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

import httpx
from harness import REPO, Ocrserve, load, log, md_table, model_archive, write_result

sys.path.insert(0, str(REPO))
from tests.ray_cluster import RayCluster  # noqa: E402  (the tests' loopback cluster)


def overhead(engine_args: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """One round of one engine: its own server, warmed up, then c1 and c<concurrency>."""
    location, image = model_archive(args.model)
    server = Ocrserve([location], "--default-workers-per-model", "1", *engine_args)
    try:
        url = server.predictions(args.model)
        load(url, [image], 1, 10, 120)  # warm up
        one = load(url, [image], 1, args.count, 300)
        many = load(url, [image], args.concurrency, 2 * args.count, 300)
    finally:
        server.stop()
    for res in (one, many):
        res.pop("latencies_ms", None)
    return {"c1": one, f"c{args.concurrency}": many}


def replicas(ray_args: list[str], args: argparse.Namespace) -> dict[int, dict[str, Any]]:
    location, image = model_archive(args.compute_model)
    server = Ocrserve([location], "--threads-per-worker", "1", *ray_args)
    out = {}
    try:
        url = server.predictions(args.compute_model)
        for count in (1, 2):
            scale = f"{server.management}/models/{args.compute_model}"
            httpx.put(f"{scale}?min_worker={count}&synchronous=true", timeout=300)
            load(url, [image], count, 4 * count, 120)  # warm every replica
            out[count] = load(url, [image], args.concurrency, args.count, 300)
            log(f"{count} replica(s): {out[count]['rps']:.2f} req/s")
    finally:
        server.stop()
    return out


def spread(values: list[float], digits: int = 2) -> str:
    """``median (min-max)``."""
    mid, low, high = statistics.median(values), min(values), max(values)
    return f"{mid:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ppocr_rec")
    parser.add_argument("--compute-model", default="ppocr_det")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip-replicas", action="store_true", help="only the overhead part")
    args = parser.parse_args(argv)
    c = f"c{args.concurrency}"
    cluster = RayCluster(nodes=1)
    engines: dict[str, list[str]] = {
        "local": [],
        "ray": ["--engine", "ray", "--ray-address", cluster.address, "--ray-replica-cpus", "0.5"],
    }
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in engines}
    scaled: dict[int, dict[str, Any]] = {}
    try:
        for r in range(args.rounds):
            for name in engines if r % 2 == 0 else reversed(engines):
                res = overhead(engines[name], args)
                rounds[name].append(res)
                log(f"round {r + 1} {name}: p50 {res['c1']['p50']:.1f} ms at c1, "
                    f"{res[c]['rps']:.2f} req/s at {c}")  # fmt: skip
        if not args.skip_replicas:
            scaled = replicas(engines["ray"], args)
    finally:
        cluster.stop()
    rows = []
    for key in ("c1", c):
        lp = [res[key]["p50"] for res in rounds["local"]]
        rp = [res[key]["p50"] for res in rounds["ray"]]
        lr = [res[key]["rps"] for res in rounds["local"]]
        rr = [res[key]["rps"] for res in rounds["ray"]]
        errors = f"{sum(res[key]['errors'] for res in rounds['local'])}/" + str(
            sum(res[key]["errors"] for res in rounds["ray"])
        )
        rows.append([
            key, spread(lp, 1), spread(rp, 1), spread([b / a for a, b in zip(lp, rp)]) + "x",
            spread([b - a for a, b in zip(lp, rp)], 1), spread(lr, 1), spread(rr, 1),
            spread([b / a for a, b in zip(lr, rr)]) + "x", errors,
        ])  # fmt: skip
    print(
        f"\n{args.model}, one worker / replica: local engine vs Ray engine (one-node cluster), "
        f"{args.rounds} alternating rounds, median (min-max) over rounds\n"
    )
    print(md_table(["clients", "local p50 ms", "ray p50 ms", "p50 ratio", "ray - local ms",
                    "local req/s", "ray req/s", "req/s ratio", "errors l/r"], rows))  # fmt: skip
    if scaled:
        one, two = scaled[1]["rps"], scaled[2]["rps"]
        print(f"\n{args.compute_model} on Ray, 1 thread per replica, {args.concurrency} clients\n")
        print(md_table(["replicas", "req/s", "p50 ms"], [
            [n, f"{scaled[n]['rps']:.2f}", f"{scaled[n]['p50']:.1f}"] for n in (1, 2)
        ]))  # fmt: skip
        print(f"\n2 vs 1 replicas: {two / one:.2f}x throughput")
        for res in scaled.values():
            res.pop("latencies_ms", None)
    write_result("ray", {"rounds": rounds, "replicas": scaled})


if __name__ == "__main__":
    main()
