#!/usr/bin/env python3
"""What each ONNX Runtime memory policy costs and keeps, side by side.

For each policy of `ocrserve.onnx_session` (``arena``: ONNX Runtime's defaults; ``shrink``:
the arena shrunk after every run; ``plain``: no arena, no memory patterns), a fresh child
process loads the bundled end-to-end ``ocr`` model (2 threads) as a worker does and answers
through the worker's own code (glibc tuned by `ocrserve.server.worker.tune_malloc`, then
`_answer` and the worker's trim rule `WorkerMemory.after_batch`): a warm-up on the demo page,
``--requests`` timed demo pages, two 16-megapixel pages, then the demo page again. It reports
the resident memory after loading, after the warm-up, after the large pages and at the end, and
the demo page's latency (p50,
p99). Policies alternate over ``--rounds`` rounds (each round runs every policy once, in a
rotated order), and the table gives the median over rounds with the min-max spread.

  python benchmarks/memory.py [--rounds 3] [--requests 30] [--policies arena shrink plain]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from statistics import median

from harness import REPO, md_table, write_result

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, {repo!r}); sys.path.insert(0, {bench!r})
from ocrserve.server.worker import limit_threads, tune_malloc
limit_threads(2)
tune_malloc()  # as a worker does, before the model loads
import psutil
from harness import extracted
from ocrserve.archives.loader import load_predictor
from ocrserve.server.worker import WorkerMemory, _answer
from ocrserve.settings import InputLimits
from tests.integration.test_memory import DEMO, _large_page
proc = psutil.Process()
rss = lambda: proc.memory_info().rss / 2**20
predictor = load_predictor(str(extracted("ocr")), 2)
memory, limits, out = WorkerMemory(), InputLimits(), {{}}
out["loaded"] = rss()
for _ in range(10):
    _answer(predictor, [DEMO], limits); memory.after_batch()
out["warm"] = rss()
times = []
for _ in range({requests}):
    start = time.perf_counter()
    _answer(predictor, [DEMO], limits); memory.after_batch()
    times.append((time.perf_counter() - start) * 1000)
times.sort()
out["p50"] = times[len(times) // 2]
out["p99"] = times[min(len(times) - 1, int(len(times) * 0.99))]
large = _large_page()
for _ in range(2):
    _answer(predictor, [large], limits); memory.after_batch()
out["large"] = rss()
for _ in range(10):
    _answer(predictor, [DEMO], limits); memory.after_batch()
out["end"] = rss()
print(json.dumps(out))
"""


def run(policy: str, requests: int) -> dict[str, float]:
    code = CHILD.format(repo=str(REPO), bench=str(REPO / "benchmarks"), requests=requests)
    env = {**os.environ, "OCRSERVE_ORT_MEMORY": policy}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--policies", nargs="+", default=["arena", "shrink", "plain"])
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {p: [] for p in args.policies}
    for r in range(args.rounds):
        order = args.policies[r % len(args.policies) :] + args.policies[: r % len(args.policies)]
        for policy in order:
            results[policy].append(run(policy, args.requests))
            print(f"round {r + 1}: {policy} {results[policy][-1]}", flush=True)
    keys = ["loaded", "warm", "large", "end", "p50", "p99"]

    def cell(policy: str, key: str) -> str:
        values = [res[key] for res in results[policy]]
        return f"{median(values):.0f} ({min(values):.0f}-{max(values):.0f})"

    print()
    print(md_table(
        ["policy", "RSS loaded MB", "warm MB", "after 16 MP pages MB", "end MB",
         "demo p50 ms", "demo p99 ms"],
        [[policy, *(cell(policy, k) for k in keys)] for policy in args.policies],
    ))  # fmt: skip
    path = write_result("memory", {"rounds": args.rounds, "results": results})
    print(f"\nwritten to {Path(path).relative_to(REPO)}")


if __name__ == "__main__":
    main()
