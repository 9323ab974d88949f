#!/usr/bin/env python3
"""The Ray engine against the local one, on the same machine.

1. Overhead: ``--model`` (default ppocr_rec, one worker) served by the local engine, then by the
   Ray engine on a one-node Ray cluster started here; one client at concurrency 1 and at
   ``--concurrency`` (default 8). Printed: p50 latency and throughput of each, and Ray's ratio to
   local (the target: Ray p50 <= 1.15x local at concurrency 1).
2. Replicas: ``--compute-model`` (default ppocr_det, one thread per worker) on the Ray engine
   with 1 then 2 replicas, throughput at ``--concurrency``.

Usage (from the repository root; needs the ocrserve[ray] extra):
  python benchmarks/ray.py [--count 60] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import httpx
from harness import REPO, Ocrserve, load, log, md_table, model_archive, write_result

sys.path.insert(0, str(REPO))
from tests.ray_cluster import RayCluster  # noqa: E402  (the tests' loopback cluster)


def overhead(engine_args: list[str], args: argparse.Namespace) -> dict[str, Any]:
    location, image = model_archive(args.model)
    server = Ocrserve([location], "--default-workers-per-model", "1", *engine_args)
    try:
        url = server.predictions(args.model)
        load(url, [image], 1, 10, 120)  # warm up
        one = load(url, [image], 1, args.count, 300)
        many = load(url, [image], args.concurrency, 2 * args.count, 300)
    finally:
        server.stop()
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ppocr_rec")
    parser.add_argument("--compute-model", default="ppocr_det")
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    c = f"c{args.concurrency}"
    cluster = RayCluster(nodes=1)
    try:
        ray_args = [
            "--engine",
            "ray",
            "--ray-address",
            cluster.address,
            "--ray-replica-cpus",
            "0.5",
        ]
        local = overhead([], args)
        log(f"local: p50 {local['c1']['p50']:.1f} ms, {local[c]['rps']:.2f} req/s at {c}")
        ray = overhead(ray_args, args)
        log(f"ray: p50 {ray['c1']['p50']:.1f} ms, {ray[c]['rps']:.2f} req/s at {c}")
        scaled = replicas(ray_args, args)
    finally:
        cluster.stop()
    rows = []
    for key in ("c1", c):
        lp, rp = local[key]["p50"], ray[key]["p50"]
        lr, rr = local[key]["rps"], ray[key]["rps"]
        errors = f"{local[key]['errors']}/{ray[key]['errors']}"
        rows.append([key, f"{lp:.1f}", f"{rp:.1f}", f"{rp / lp:.2f}x", f"{lr:.2f}", f"{rr:.2f}",
                     f"{rr / lr:.2f}x", errors])  # fmt: skip
    print(f"\n{args.model}, one worker / replica: local engine vs Ray engine (one-node cluster)\n")
    print(md_table(["clients", "local p50 ms", "ray p50 ms", "p50 ratio", "local req/s",
                    "ray req/s", "req/s ratio", "errors l/r"], rows))  # fmt: skip
    one, two = scaled[1]["rps"], scaled[2]["rps"]
    print(f"\n{args.compute_model} on Ray, 1 thread per replica, {args.concurrency} clients\n")
    print(md_table(["replicas", "req/s", "p50 ms"], [
        [n, f"{scaled[n]['rps']:.2f}", f"{scaled[n]['p50']:.1f}"] for n in (1, 2)
    ]))  # fmt: skip
    print(f"\n2 vs 1 replicas: {two / one:.2f}x throughput")
    for part in (local, ray, scaled):
        for res in part.values():
            res.pop("latencies_ms", None)
    write_result("ray", {"local": local, "ray": ray, "replicas": scaled})


if __name__ == "__main__":
    main()
