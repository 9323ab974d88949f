"""Soak: the load test's workload for many requests; does memory keep growing?

Starts ``ocrserve start --foreground`` on free loopback ports with the bundled models, warms it
up, then sends ``--requests`` requests (default 10,000) at ``--concurrency`` through the mix of
``tests/integration/test_load.py`` (the demo word, line crops at three scales, line crops and
the whole page for detection, line crops end to end), in rounds. After each round it prints the
answers so far and the resident memory of the server and of each worker, then a summary:
answers by status, wrong answers, latency median and p90, and RSS growth from the end of the
warm-up to the end, in total and per process. Meanwhile one model (``--scale-model``) is scaled
from 1 worker to 2 and back every ``--scale-every`` answered requests, so that workers are
retired and started under load; at the end it is back at 1 worker before memory is read.
Requests without an answer (a transport error or a time-out: lost or hung) are counted apart.
After the warm-up, a burst of large inputs (``--large-pages`` 16-megapixel pages to ``ocr``
and ``ppocr_det``, ``--pdfs`` PDFs of 50 small pages to ``ocr``) is sent, and memory is read
again before the mixed load: a large input must not raise the floor. Memory is reported as RSS
(what the target counts; shared libraries are counted once per process) and as PSS (shared
pages divided among the processes that map them: what the processes together take).
``--checkout DIR`` serves from another checkout of ocrserve (e.g. the previous main, for a side
by side run with the same workload).

  python benchmarks/soak.py [--requests 10000] [--concurrency 16] [--rounds 10]
                            [--scale-every 500] [--scale-model ppocr_rec] [--warmup 232]
                            [--large-pages 3] [--pdfs 2] [--checkout DIR]
                            [--job-queue-size 100] [--server-args "..."]

Every request is on loopback and the run is bounded by ``--requests``; it stops by itself.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocrserve.server.launcher import LocalServer  # noqa: E402
from tests.conftest import ServerProcess  # noqa: E402
from tests.integration.test_load import (  # noqa: E402
    Outcome,
    counters,
    run_load,
    schedule,
    workload,
)

MODELS = ("ocr", "ppocr_det", "ppocr_rec")


def worker_names(management_url: str) -> dict[int, str]:
    """Worker pid -> model name (``name#i`` for a model's later workers)."""
    names = {}
    for model in MODELS:
        (desc,) = httpx.get(f"{management_url}/models/{model}", timeout=30).json()
        for i, worker in enumerate(desc["workers"]):
            names[worker["pid"]] = model if i == 0 else f"{model}#{i}"
    return names


def process_rss(server_pid: int, names: dict[int, str], kind: str = "rss") -> dict[str, int]:
    """RSS (or PSS) in bytes: the server process, each named worker, and everything else."""
    root = psutil.Process(server_pid)
    out: Counter[str] = Counter()
    for proc in [root, *root.children(recursive=True)]:
        try:
            name = "server" if proc.pid == server_pid else names.get(proc.pid, "other")
            info = proc.memory_full_info() if kind == "pss" else proc.memory_info()
            out[name] += getattr(info, kind)
        except psutil.NoSuchProcess:
            pass
    return dict(out)


def memory_line(label: str, srv_pid: int, workers: dict[int, str]) -> dict[str, int]:
    """Print RSS per process and the totals of RSS and PSS; the RSS per process."""
    rss = process_rss(srv_pid, workers)
    pss = process_rss(srv_pid, workers, "pss")
    print(f"{label}, RSS MiB: " + ", ".join(f"{n} {mib(rss[n])}" for n in sorted(rss))
          + f"; total RSS {mib(sum(rss.values()))}, PSS {mib(sum(pss.values()))}")  # fmt: skip
    return rss


def large_burst(srv: ServerProcess, pages: int, pdfs: int) -> None:
    """``pages`` 16-megapixel pages to ``ocr`` and ``ppocr_det``, then ``pdfs`` 50-page PDFs."""
    from tests.documents import pdf_of, text_page
    from tests.integration.test_memory import _large_page

    large = _large_page()
    for _ in range(pages):
        for model in ("ocr", "ppocr_det"):
            resp = httpx.put(f"{srv.url}/predictions/{model}", content=large, timeout=600)
            resp.raise_for_status()
    words = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO"]
    pdf = pdf_of([text_page(words[k % 5]) for k in range(50)])
    for _ in range(pdfs):
        resp = httpx.put(f"{srv.url}/predictions/ocr", content=pdf, timeout=1800)
        resp.raise_for_status()
        assert len(resp.json()["pages"]) == 50


class Scaler(threading.Thread):
    """Scales ``model`` to 2 workers and back to 1 each time ``every`` more requests have been
    answered (by the server's own counters), until stopped."""

    def __init__(self, srv: ServerProcess, model: str, every: int) -> None:
        super().__init__(daemon=True)
        self.srv, self.model, self.every = srv, model, every
        self.changes = 0
        self.halt = threading.Event()
        c = counters(srv.metrics_url)
        self.start_count = c["Requests2XX"] + c["Requests4XX"] + c["Requests5XX"]

    def run(self) -> None:
        next_at = self.every
        while not self.halt.wait(0.1):
            c = counters(self.srv.metrics_url)
            answered = c["Requests2XX"] + c["Requests4XX"] + c["Requests5XX"] - self.start_count
            if answered >= next_at:
                self.scale(2 if self.changes % 2 == 0 else 1, synchronous=False)
                self.changes += 1
                next_at += self.every

    def scale(self, workers: int, synchronous: bool) -> None:
        url = f"{self.srv.management_url}/models/{self.model}"
        params = {"min_worker": workers, "synchronous": str(synchronous).lower()}
        httpx.put(url, params=params, timeout=300).raise_for_status()


def uptime() -> str:
    """``uptime``'s line: the load averages beside the result."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def mib(n: float) -> str:
    return f"{n / 2**20:.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--scale-every", type=int, default=500, help="0: never scale")
    ap.add_argument("--scale-model", default="ppocr_rec")
    ap.add_argument("--rounds", type=int, default=10, help="RSS is sampled after each round")
    ap.add_argument(
        "--warmup",
        type=int,
        default=232,
        help="requests before the baseline, in all: each kind once, then from the mix",
    )
    ap.add_argument("--large-pages", type=int, default=3, help="16 MP pages per model")
    ap.add_argument("--pdfs", type=int, default=2, help="50-page PDFs in the burst")
    ap.add_argument("--checkout", default=None, help="serve from this checkout of ocrserve")
    ap.add_argument("--job-queue-size", type=int, default=100)
    ap.add_argument("--server-args", default="", help="extra arguments for `ocrserve start`")
    args = ap.parse_args()

    kinds = workload()
    with tempfile.TemporaryDirectory(prefix="ocrserve-soak-") as tmp:
        extra = ("--job-queue-size", str(args.job_queue_size), *shlex.split(args.server_args))
        if args.checkout:
            srv = LocalServer(Path(tmp), *extra, pythonpath=Path(args.checkout).resolve())
        else:
            srv = ServerProcess(Path(tmp), *extra)
        try:
            srv.wait_healthy()
            print(f"server pid {srv.proc.pid} at {srv.url}; {len(kinds)} kinds of request")
            print(f"load: {uptime()}")
            run_load(srv.url, kinds[: args.warmup], 1, deadline=3600)
            if args.warmup > len(kinds):
                rest = schedule(kinds, args.warmup - len(kinds), seed=1)
                run_load(srv.url, rest, args.concurrency, deadline=3600)
            workers = worker_names(srv.management_url)
            base = memory_line(f"after warm-up ({args.warmup} requests)", srv.proc.pid, workers)
            if args.large_pages or args.pdfs:
                large_burst(srv, args.large_pages, args.pdfs)
                memory_line(
                    f"after the burst ({args.large_pages} x 2 pages of 16 MP, {args.pdfs} "
                    "PDFs of 50 pages)", srv.proc.pid, workers,
                )  # fmt: skip
            before = counters(srv.metrics_url)
            names = sorted(base)
            print(f"{'requests':>9} {'seconds':>8} {'200':>6} {'503':>6} {'other':>6} "
                  + " ".join(f"{n[:10]:>10}" for n in names) + f" {'total MiB':>10}")  # fmt: skip

            outcomes: list[Outcome] = []
            scaler = Scaler(srv, args.scale_model, args.scale_every)
            if args.scale_every:
                scaler.start()
            started = time.perf_counter()
            per_round = max(1, args.requests // args.rounds)
            sent = 0
            for r in range(args.rounds):
                n = per_round if r < args.rounds - 1 else args.requests - sent
                requests = schedule(kinds, n, seed=100 + r)
                outcomes += run_load(srv.url, requests, args.concurrency, deadline=3600)
                sent += n
                rss = process_rss(srv.proc.pid, workers)
                codes = Counter(o.status for o in outcomes)
                other = len(outcomes) - codes[200] - codes[503]
                print(f"{sent:>9} {time.perf_counter() - started:>8.1f} {codes[200]:>6} "
                      f"{codes[503]:>6} {other:>6} "
                      + " ".join(f"{mib(rss.get(n, 0)):>10}" for n in names)
                      + f" {mib(sum(rss.values())):>10}")  # fmt: skip
            elapsed = time.perf_counter() - started
            scaler.halt.set()
            if args.scale_every:
                scaler.join(30)
                scaler.scale(1, synchronous=True)  # as at the warm-up, before memory is read
                rss = process_rss(srv.proc.pid, workers)
            end_pss = process_rss(srv.proc.pid, workers, "pss")
            after = counters(srv.metrics_url)
            unscaled = {p: n for p, n in workers.items() if not n.startswith(args.scale_model)}
            now = worker_names(srv.management_url)
            same_workers = {p: n for p, n in now.items() if p in unscaled} == unscaled
        finally:
            code = srv.stop()

    codes = Counter(o.status for o in outcomes)
    wrong = [o for o in outcomes if o.problem]
    unanswered = codes[0]
    lat = sorted(o.latency for o in outcomes if o.status == 200)
    delta = after - before
    grown = {n: rss.get(n, 0) - base[n] for n in names}
    total_base, total_end = sum(base.values()), sum(rss.values())
    print()
    print("| requests | concurrency | scalings | seconds | 200 | 503 | other | no answer | wrong "
          "| median ms | p90 ms |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {len(outcomes)} | {args.concurrency} | {scaler.changes} | {elapsed:.0f} | "
          f"{codes[200]} | {codes[503]} | {len(outcomes) - codes[200] - codes[503] - unanswered} | "
          f"{unanswered} | {len(wrong)} | "
          f"{lat[len(lat) // 2] * 1000:.0f} | {lat[int(len(lat) * 0.9)] * 1000:.0f} |")  # fmt: skip
    print()
    print(
        f"RSS after warm-up {mib(total_base)} MiB, at the end {mib(total_end)} MiB: "
        f"{(total_end - total_base) / 2**20:+.1f} MiB "
        f"({(total_end - total_base) / total_base * 100:+.1f} %) over {len(outcomes)} requests"
    )
    print("per process (MiB): " + ", ".join(f"{n} {grown[n] / 2**20:+.1f}" for n in names))
    print("at the end, per process (MiB): " + ", ".join(f"{n} {mib(rss.get(n, 0))}" for n in names))
    print(f"PSS at the end: {mib(sum(end_pss.values()))} MiB")
    print(f"load: {uptime()}")
    print(f"server counters: 2XX {delta['Requests2XX']:.0f}, 5XX {delta['Requests5XX']:.0f}, "
          f"4XX {delta['Requests4XX']:.0f}; the unscaled models kept their workers: "
          f"{same_workers}; server exit status {code}")  # fmt: skip
    for o in wrong[:5]:
        print(f"wrong: {o.kind.label}: {o.problem}")
    scale_calls = scaler.changes + (1 if args.scale_every else 0)  # 202s and the last 200
    consistent = (
        delta["Requests2XX"] - scale_calls == codes[200] and delta["Requests5XX"] == codes[503]
    )
    ok = not wrong and not unanswered and consistent and same_workers and code == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
