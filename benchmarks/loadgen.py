#!/usr/bin/env python3
"""A small closed-loop HTTP load generator: N threads, each with its own keep-alive connection.

Run as a separate process by the other benchmarks so that the client does not share an
interpreter (or a GIL) with the server. Each thread sends ``METHOD URL`` with the next body
(the files given, in turn) as soon as its previous answer arrived, until ``--count`` requests
were sent in all or ``--duration`` seconds passed. Prints one JSON object on stdout:
``{"concurrency", "sent", "ok", "errors", "wall_s", "latencies_ms": [...], "statuses": {...}}``;
``--responses FILE`` also writes the JSON answer of each file (the last one received).

Usage: python benchmarks/loadgen.py URL FILE [FILE ...] [--concurrency 4] [--count 100]
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--count", type=int, default=100, help="requests in all (upper bound)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds (upper bound)")
    ap.add_argument("--method", default="PUT")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--responses", type=Path, help="write the JSON answer per file here")
    args = ap.parse_args(argv)

    bodies = [(str(f), f.read_bytes()) for f in args.files]
    tickets = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    answers: dict[str, Any] = {}
    deadline = time.monotonic() + args.duration

    def client() -> None:
        with httpx.Client(timeout=args.timeout) as http:
            while time.monotonic() < deadline:
                with lock:
                    n = next(tickets)
                if n >= args.count:
                    return
                name, body = bodies[n % len(bodies)]
                t0 = time.perf_counter()
                try:
                    r = http.request(args.method, args.url, content=body)
                    status = str(r.status_code)
                except httpx.HTTPError as exc:
                    r, status = None, type(exc).__name__
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                    if status == "200":
                        latencies.append(ms)
                        if args.responses is not None and r is not None:
                            answers[name] = r.json()

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if args.responses is not None:
        args.responses.write_text(json.dumps(answers), encoding="utf-8")
    sent = sum(statuses.values())
    out = {
        "concurrency": args.concurrency,
        "sent": sent,
        "ok": len(latencies),
        "errors": sent - len(latencies),
        "wall_s": wall,
        "latencies_ms": latencies,
        "statuses": statuses,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
