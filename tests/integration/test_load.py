"""A short, bounded load test: every request gets exactly one answer, nothing hangs, memory
stays flat.

N requests at concurrency C against the bundled models, a mix of models and image sizes:
the demo word, line crops of the demo page at three scales (recognition), line crops and the
whole page (detection), line crops (end to end). With a small ``job_queue_size`` some requests
are refused; each answer must be a correct 200 or the documented 503, no request may time out,
the server's own counters must agree with what the clients saw, and the resident memory of the
server and its workers after the run must stay within a bound of its level after a warm-up.

`benchmarks/soak.py` runs the same workload for 10,000 requests and reports the growth.
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DEMO, ServerProcess, running

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
REC_TEXT = (DEMO / "demo_text_recog.txt").read_text().strip()
DET_IMG = (DEMO / "demo_text_det.jpg").read_bytes()
GT_LINES = json.loads((DEMO / "demo_text_det.json").read_text())["lines"]

N_REQUESTS = 200
CONCURRENCY = 8
QUEUE_SIZE = 4  # per model: 1 running + 4 waiting, so 8 clients on one model overflow it
REQUEST_TIMEOUT = 60.0
RUN_DEADLINE = 240.0


# -- the workload ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of request: a model, a body and how to tell its answer is right."""

    label: str
    model: str
    body: bytes
    check: Callable[[Any], bool]
    weight: float


def _squash(text: str) -> str:
    return "".join(text.split())


def _reads(text: str) -> Callable[[Any], bool]:
    """Recognition read exactly ``text`` (PP-OCR may add a leading space)."""
    return lambda result: bool(result["text"].strip() == text)


def _finds(text: str) -> Callable[[Any], bool]:
    """End to end found ``text``, however it split it into lines and words."""
    return lambda result: _squash("".join(x["text"] for x in result["result"])) == _squash(text)


def _crop(page: Image.Image, points: list[list[int]], margin: int, scale: float) -> bytes:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    box = (
        max(0, min(xs) - margin),
        max(0, min(ys) - margin),
        min(page.width, max(xs) + margin),
        min(page.height, max(ys) + margin),
    )
    crop = page.crop(box)
    if scale != 1.0:
        crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))))
    buf = io.BytesIO()
    crop.save(buf, "PNG")
    return buf.getvalue()


def workload() -> list[Kind]:
    """Every kind of request of the mix, each with its weight."""
    page = Image.open(io.BytesIO(DET_IMG)).convert("RGB")
    kinds = [
        Kind("rec/word", "ppocr_rec", REC_IMG, lambda r: r["text"] == REC_TEXT, 6.0),
        Kind(
            "det/page",
            "ppocr_det",
            DET_IMG,
            lambda r: len(r["boundary_result"]) == len(GT_LINES),
            1.0,
        ),
    ]
    for line in GT_LINES:
        text = line["text"]
        for scale in (0.5, 1.0, 2.0):
            kinds.append(
                Kind(
                    f"rec/line@{scale}",
                    "ppocr_rec",
                    _crop(page, line["points"], 10, scale),
                    _reads(text),
                    1.0,
                )
            )
        wide = _crop(page, line["points"], 30, 1.0)
        kinds.append(
            Kind(
                "ocr/line",
                "ocr",
                wide,
                _finds(text),
                1.0,
            )
        )
        kinds.append(
            Kind("det/line", "ppocr_det", wide, lambda r: len(r["boundary_result"]) >= 1, 1.0)
        )
    return kinds


def schedule(kinds: list[Kind], n: int, seed: int = 0) -> list[Kind]:
    rng = random.Random(seed)
    return rng.choices(kinds, weights=[k.weight for k in kinds], k=n)


@dataclass
class Outcome:
    kind: Kind
    status: int  # 0: no answer (transport error or timeout)
    latency: float
    problem: str = ""  # why the answer is wrong, empty when it is right


def _judge(kind: Kind, resp: httpx.Response) -> str:
    if not resp.headers.get("content-type", "").startswith("application/json"):
        return f"content-type {resp.headers.get('content-type')!r}"
    body = resp.json()
    if resp.status_code == 200:
        try:
            return "" if kind.check(body) else f"wrong result {str(body)[:200]}"
        except (KeyError, TypeError) as exc:
            return f"malformed result {exc!r}: {str(body)[:200]}"
    if resp.status_code == 503:
        expected = {"code": 503, "type": "ServiceUnavailableException"}
        if {k: body.get(k) for k in expected} != expected or "queue is full" not in body.get(
            "message", ""
        ):
            return f"undocumented 503 {body}"
        return ""
    return f"status {resp.status_code}: {resp.text[:200]}"


def run_load(
    url: str,
    requests: list[Kind],
    concurrency: int,
    timeout: float = REQUEST_TIMEOUT,
    deadline: float = RUN_DEADLINE,
) -> list[Outcome]:
    """Send every request once, ``concurrency`` at a time; one outcome per request."""
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=timeout)
            with lock:
                clients.append(local.client)
        return local.client

    def one(kind: Kind) -> Outcome:
        started = time.perf_counter()
        try:
            resp = client().put(f"/predictions/{kind.model}", content=kind.body)
        except httpx.HTTPError as exc:
            return Outcome(kind, 0, time.perf_counter() - started, f"no answer: {exc!r}")
        return Outcome(kind, resp.status_code, time.perf_counter() - started, _judge(kind, resp))

    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="load")
    try:
        futures = [pool.submit(one, kind) for kind in requests]
        done, pending = wait(futures, timeout=deadline)
        assert not pending, f"{len(pending)} requests still unanswered after {deadline} s"
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for c in clients:
            c.close()


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (the server and its workers)."""
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def counters(metrics_url: str) -> Counter[str]:
    """Request counters of the metrics API: ``Requests2XX`` ... and per-model totals."""
    text = httpx.get(metrics_url + "/metrics", timeout=30).text
    out: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name.removesuffix("_total")
            if name in ("Requests2XX", "Requests4XX", "Requests5XX"):
                out[name] += int(sample.value)
            elif name == "ts_inference_requests":
                out["model:" + sample.labels["model_name"]] += int(sample.value)
    return out


# -- the test -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path_factory.mktemp("load"), "--job-queue-size", str(QUEUE_SIZE)
    )  # fmt: skip
    yield from running(server)


def worker_pids(management_url: str) -> dict[str, list[int]]:
    out = {}
    for model in ("ocr", "ppocr_det", "ppocr_rec"):
        (desc,) = httpx.get(f"{management_url}/models/{model}", timeout=30).json()
        out[model] = sorted(w["pid"] for w in desc["workers"] if w["status"] == "READY")
    return out


def test_every_request_gets_one_right_answer_and_memory_stays_flat(srv: ServerProcess) -> None:
    pids = worker_pids(srv.management_url)
    kinds = workload()
    # Warm-up: every kind once, then bursts at full concurrency until memory settles
    # (ONNX Runtime's arenas grow for a while as input shapes vary), at most 4 bursts.
    warm = run_load(srv.url, kinds, 3)
    rss_before = tree_rss(srv.proc.pid)
    for burst in range(4):
        warm += run_load(srv.url, schedule(kinds, 32, seed=10 + burst), CONCURRENCY)
        rss, rss_before = rss_before, tree_rss(srv.proc.pid)
        if rss_before - rss < 8 * 2**20:
            break
    assert all(not o.problem for o in warm), [o.problem for o in warm if o.problem][:5]
    before = counters(srv.metrics_url)

    # The run opens with every client asking for the slowest kind at once (a whole page to
    # detect): 8 requests for a model that holds 5, so some are refused whatever the speed
    # of the machine; then the mix.
    page = next(k for k in kinds if k.label == "det/page")
    requests = [page] * CONCURRENCY + schedule(kinds, N_REQUESTS - CONCURRENCY, seed=2)
    started = time.perf_counter()
    outcomes = run_load(srv.url, requests, CONCURRENCY)
    elapsed = time.perf_counter() - started

    rss_after = tree_rss(srv.proc.pid)
    after = counters(srv.metrics_url)
    statuses = Counter(o.status for o in outcomes)
    latencies = sorted(o.latency for o in outcomes)
    print(
        f"\n{N_REQUESTS} requests at concurrency {CONCURRENCY} in {elapsed:.1f} s: "
        f"{dict(statuses)}; latency median {latencies[len(latencies) // 2] * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms; RSS {rss_before / 2**20:.0f} -> "
        f"{rss_after / 2**20:.0f} MiB (after a warm-up of {len(warm)} requests)"
    )

    # Exactly one answer each, and each one right.
    assert len(outcomes) == N_REQUESTS
    problems = [f"{o.kind.label}: {o.problem}" for o in outcomes if o.problem]
    assert not problems, problems[:10]
    assert set(statuses) <= {200, 503}
    assert statuses[200] >= N_REQUESTS // 2, statuses
    assert statuses[503] >= 1, "8 page requests at once should overflow job_queue_size=4"
    assert latencies[-1] < REQUEST_TIMEOUT

    # The server counted the same answers (nothing lost or answered twice).
    delta = after - before
    assert delta["Requests2XX"] == statuses[200]
    assert delta["Requests5XX"] == statuses[503]
    assert delta["Requests4XX"] == 0
    sent = Counter(k.model for k in requests)
    for model in ("ocr", "ppocr_det", "ppocr_rec"):
        assert delta["model:" + model] == sent[model], model

    # Memory: within 5 % + 32 MiB of its level after the warm-up.
    assert rss_after <= rss_before * 1.05 + 32 * 2**20, (rss_before, rss_after)

    # And the server still serves, with its first workers.
    assert httpx.get(srv.url + "/ping", timeout=30).status_code == 200
    assert worker_pids(srv.management_url) == pids
    resp = httpx.put(srv.url + "/predictions/ppocr_rec", content=REC_IMG, timeout=60)
    assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT
