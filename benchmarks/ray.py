#!/usr/bin/env python3
"""The Ray engine against the local one, on the same machine.

1. Overhead: ``--model`` (default ppocr_rec, one worker) served by the local engine and by the
   Ray engine on a one-node Ray cluster started here (up for both engines' runs), ``--rounds``
   alternating rounds (the order flips every round; each round starts its server, warms it up
   with 10 requests and stops it after): one client at concurrency 1 (``--count`` requests),
   then at ``--concurrency`` (default 8). Printed: per engine the median p50 and throughput of
   the rounds, and Ray's ratio to local per round (median, min-max). The target: Ray p50 <=
   1.15x local at concurrency 1. Then where one client's time goes: the server's mean time per
   request, and its queue part, from its own metrics (``ts_inference_latency_microseconds``,
   ``ts_queue_latency_microseconds``), read before and after the one-client run.
2. Replicas: ``--compute-model`` (default ppocr_det, one thread per worker) on the Ray engine
   with 1 then 2 replicas, throughput at ``--concurrency``.
3. Floor (``--floor``): what one call costs Ray itself, with no model and no HTTP: a 20 KB
   argument to a replica that answers at once, from an asyncio driver on the same cluster, as
   a plain Ray actor call, as a Serve handle over its gRPC channel (the engine's path) and as
   a Serve handle's actor task (``--no-ray-replica-grpc``); ``--rounds`` alternating rounds of
   ``--count`` calls, p50 per round. The 1.15x target leaves 0.15x the local p50 for all of
   Ray's path: this says how much of that Ray's own hop takes. ``--floor-work-ms 0 16`` times
   each path also with a replica that is busy for that long (SHA-256 over a buffer in a thread of
   its own, which releases the GIL as the model does), as the engine's replica is while it
   predicts: printed is the p50 of (round trip - the replica's time around its executor call,
   as the engine's ``batch_s``), the hop's cost when the replica's CPU is busy too.

Usage (from the repository root, not from benchmarks/, whose ray.py would shadow Ray; needs
the ocrserve[ray] extra):
  python benchmarks/ray.py [--rounds 5] [--count 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from harness import REPO, Ocrserve, load, log, md_table, model_archive, write_result
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(REPO))
from tests.ray_cluster import RayCluster  # noqa: E402  (the tests' loopback cluster)


def overhead(engine_args: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """One round of one engine: its own server, warmed up, then c1 and c<concurrency>."""
    location, image = model_archive(args.model)
    server = Ocrserve([location], "--default-workers-per-model", "1", *engine_args)
    try:
        url = server.predictions(args.model)
        load(url, [image], 1, 10, 120)  # warm up
        before = server_sums(server.server.metrics_url, args.model)
        one = load(url, [image], 1, args.count, 300)
        after = server_sums(server.server.metrics_url, args.model)
        count = after["ts_inference_requests"] - before["ts_inference_requests"]
        for key, name in (("server_ms", "inference"), ("queue_ms", "queue")):
            counter = f"ts_{name}_latency_microseconds"
            one[key] = (after[counter] - before[counter]) / 1e3 / count
        many = load(url, [image], args.concurrency, 2 * args.count, 300)
    finally:
        server.stop()
    for res in (one, many):
        res.pop("latencies_ms", None)
    return {"c1": one, f"c{args.concurrency}": many}


def server_sums(metrics_url: str, model: str) -> dict[str, float]:
    """The server's per-request counters for ``model``, summed over versions (its /metrics),
    by the parser's family names (which drop "_total")."""
    names = ("ts_inference_requests", "ts_inference_latency_microseconds",
             "ts_queue_latency_microseconds")  # fmt: skip
    sums = dict.fromkeys(names, 0.0)
    text = httpx.get(f"{metrics_url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        if family.name in sums:
            sums[family.name] += sum(
                sample.value for sample in family.samples
                if sample.labels.get("model_name") == model
            )  # fmt: skip
    return sums


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


def floor(address: str, args: argparse.Namespace) -> dict[str, list[float]]:
    """p50 ms per round of an immediate answer by each way of calling a replica (part 3)."""
    here = Path(__file__).resolve().parent  # this file is "ray" on its own folder's path
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.modules.pop("ray", None)
    import ray
    from ray import serve

    async def answer(request: tuple[bytes, dict[str, Any]]) -> dict[str, float]:
        """At once, or after ``work_ms`` of CPU in an executor thread; the time reported is
        taken around the executor call, as the engine's replica takes its ``batch_s``."""
        work_ms = request[1].get("work_ms", 0)
        if not work_ms:
            return {"n": len(request[0]), "work_ms": 0.0}
        started = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(None, burn, work_ms)
        return {"n": len(request[0]), "work_ms": (time.perf_counter() - started) * 1000}

    @serve.deployment(
        name="floor", max_ongoing_requests=1, ray_actor_options={"num_cpus": 0},
        logging_config={"enable_access_log": False},  # as the engine's replicas
    )  # fmt: skip
    class Echo:
        async def predict_one(self, request: tuple[bytes, dict[str, Any]]) -> dict[str, float]:
            return await answer(request)

    @ray.remote(num_cpus=0)
    class Plain:
        async def predict_one(self, request: tuple[bytes, dict[str, Any]]) -> dict[str, float]:
            return await answer(request)

    ray.init(address=address, logging_level="ERROR")
    try:
        handle = serve.run(Echo.bind(), name="ocrserve-floor", route_prefix=None)
        actor = Plain.remote()  # type: ignore[attr-defined]
        ray.get(actor.predict_one.remote((b"", {})))
        grpc = handle.options(_by_reference=False)
        calls = {
            "plain Ray actor": lambda x: actor.predict_one.remote(x),
            "Serve handle, gRPC": lambda x: grpc.predict_one.remote(x),
            "Serve handle, actor task": lambda x: handle.predict_one.remote(x),
        }
        body = os.urandom(20_000)

        async def p50(call: Any, work_ms: float) -> float:
            times = []
            for i in range(args.count + 20):
                started = time.perf_counter()
                reply = await call((body, {"work_ms": work_ms}))
                if i >= 20:  # warm-up
                    times.append((time.perf_counter() - started) * 1000 - reply["work_ms"])
            return statistics.median(times)

        cases = [(name, work) for work in args.floor_work_ms for name in calls]

        async def run() -> dict[str, list[float]]:
            out: dict[str, list[float]] = {label(*case): [] for case in cases}
            for r in range(args.rounds):
                for name, work in cases if r % 2 == 0 else reversed(cases):
                    out[label(name, work)].append(await p50(calls[name], work))
            return out

        return asyncio.run(run())
    finally:
        serve.delete("ocrserve-floor")
        ray.shutdown()


def label(path: str, work_ms: float) -> str:
    return path if not work_ms else f"{path}, replica busy {work_ms:g} ms"


def burn(ms: float) -> None:
    """About ``ms`` of one core's time in SHA-256 (which releases the GIL)."""
    block = bytes(1 << 16)
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        hashlib.sha256(block).digest()


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
    parser.add_argument("--skip-replicas", action="store_true", help="without part 2")
    parser.add_argument("--floor", action="store_true", help="part 3 as well")
    parser.add_argument("--floor-only", action="store_true", help="only part 3")
    parser.add_argument("--floor-work-ms", type=float, nargs="+", default=[0.0],
                        help="part 3, replica busy this long (0: answers at once)")  # fmt: skip
    args = parser.parse_args(argv)
    c = f"c{args.concurrency}"
    cluster = RayCluster(nodes=1)
    engines: dict[str, list[str]] = {
        "local": [],
        "ray": ["--engine", "ray", "--ray-address", cluster.address, "--ray-replica-cpus", "0.5"],
    }
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in engines}
    scaled: dict[int, dict[str, Any]] = {}
    floors: dict[str, list[float]] = {}
    try:
        for r in range(0 if args.floor_only else args.rounds):
            for name in engines if r % 2 == 0 else reversed(engines):
                res = overhead(engines[name], args)
                rounds[name].append(res)
                log(f"round {r + 1} {name}: p50 {res['c1']['p50']:.1f} ms at c1, "
                    f"{res[c]['rps']:.2f} req/s at {c}")  # fmt: skip
        if not args.skip_replicas and not args.floor_only:
            scaled = replicas(engines["ray"], args)
        if args.floor or args.floor_only:
            floors = floor(cluster.address, args)
    finally:
        cluster.stop()
    if floors:
        print(f"\nOne call's round trip less the replica's work, 20 KB argument, {args.rounds} "
              f"rounds of {args.count} calls: p50 ms, median (min-max) over rounds\n")  # fmt: skip
        print(md_table(["path", "p50 ms"], [[name, spread(v)] for name, v in floors.items()]))
        if args.floor_only:
            write_result("ray_floor", {"floor": floors})
            return
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
    print(
        "\nWhere one client's time goes, per engine, ms (median (min-max) over rounds): the "
        "client's p50, and the server's means per request from its own metrics: the whole "
        "request, its queue (local: the job queue; Ray: the handle's round trip less the "
        "replica's own time) and the rest (local: the worker's round trip; Ray: the replica's "
        "time), both with the route's own work\n"
    )
    print(md_table(["engine", "client p50", "server", "queue", "server - queue"], [
        [name, spread([r["c1"]["p50"] for r in rounds[name]]),
         spread([r["c1"]["server_ms"] for r in rounds[name]]),
         spread([r["c1"]["queue_ms"] for r in rounds[name]]),
         spread([r["c1"]["server_ms"] - r["c1"]["queue_ms"] for r in rounds[name]])]
        for name in engines
    ]))  # fmt: skip
    if scaled:
        one, two = scaled[1]["rps"], scaled[2]["rps"]
        print(f"\n{args.compute_model} on Ray, 1 thread per replica, {args.concurrency} clients\n")
        print(md_table(["replicas", "req/s", "p50 ms"], [
            [n, f"{scaled[n]['rps']:.2f}", f"{scaled[n]['p50']:.1f}"] for n in (1, 2)
        ]))  # fmt: skip
        print(f"\n2 vs 1 replicas: {two / one:.2f}x throughput")
        for res in scaled.values():
            res.pop("latencies_ms", None)
    write_result("ray", {"rounds": rounds, "replicas": scaled, "floor": floors})


if __name__ == "__main__":
    main()
