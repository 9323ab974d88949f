"""The engine under load on a real server: dynamic batching, a full job queue, a stuck worker.

Worker crashes and recovery are in ``test_lifecycle.py``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DEMO, ServerProcess, running

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
REC_TEXT = (DEMO / "demo_text_recog.txt").read_text().strip()
DET_IMG = (DEMO / "demo_text_det.jpg").read_bytes()
GT_TEXTS = sorted(
    line["text"] for line in json.loads((DEMO / "demo_text_det.json").read_text())["lines"]
)
BATCH, DELAY_MS = 4, 1000

T = TypeVar("T")


def _together(n: int, call: Callable[[int], T]) -> list[T]:
    """Run ``call(0..n-1)`` in ``n`` threads released at the same moment."""
    barrier = threading.Barrier(n)

    def run(i: int) -> T:
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def _batch_histogram(srv: ServerProcess, model: str) -> dict[str, float]:
    """``ocrserve_batch_size`` samples of one model: ``le=...`` buckets, ``count``, ``sum``."""
    text = httpx.get(srv.metrics_url + "/metrics?name[]=ocrserve_batch_size").text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("model_name") != model:
                continue
            if s.name.endswith("_bucket"):
                out["le=" + s.labels["le"]] = s.value
            else:
                out[s.name.rsplit("_", 1)[1]] = s.value
    return out


def _queue_seconds(srv: ServerProcess, model: str) -> float:
    """``ts_queue_latency_microseconds`` of ``model`` (no version named), in seconds."""
    text = httpx.get(srv.metrics_url + "/metrics?name[]=ts_queue_latency_microseconds").text
    return sum(
        s.value / 1e6
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("model_name") == model and s.labels.get("model_version") == "default"
    )


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


# -- dynamic batching -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def batching(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    models = {"ppocr_rec": {"1.0": {"batchSize": BATCH, "maxBatchDelay": DELAY_MS}}}
    server = ServerProcess(
        tmp_path_factory.mktemp("batching"), "--models", "ppocr_rec",
        "--models-json", json.dumps(models),
    )  # fmt: skip
    yield from running(server)


def test_models_json_batch_settings_are_described(batching: ServerProcess) -> None:
    (desc,) = httpx.get(batching.management_url + "/models/ppocr_rec").json()
    assert (desc["batchSize"], desc["maxBatchDelay"]) == (BATCH, DELAY_MS)


def test_concurrent_requests_run_as_one_batch(batching: ServerProcess) -> None:
    before, queued = _batch_histogram(batching, "ppocr_rec"), _queue_seconds(batching, "ppocr_rec")

    def call(i: int) -> tuple[int, Any]:
        r = httpx.put(batching.url + "/predictions/ppocr_rec", content=REC_IMG, timeout=60)
        return r.status_code, r.json()

    answers = _together(BATCH, call)
    assert [(status, body["text"]) for status, body in answers] == [(200, REC_TEXT)] * BATCH
    delta = _delta(_batch_histogram(batching, "ppocr_rec"), before)
    # One batch of four: the count grows by one, the sum by four, and only buckets >= 4.
    assert delta["count"] == 1 and delta["sum"] == BATCH, delta
    assert delta["le=1.0"] == delta["le=2.0"] == 0 and delta["le=4.0"] == 1, delta
    # A full batch is sent at once, without waiting out maxBatchDelay: the four requests
    # waited (queue latency, summed) far less than one delay.
    waited = _queue_seconds(batching, "ppocr_rec") - queued
    assert 0 < waited < DELAY_MS / 1000 / 2, waited


def test_a_lone_request_waits_at_most_max_batch_delay(batching: ServerProcess) -> None:
    before, queued = _batch_histogram(batching, "ppocr_rec"), _queue_seconds(batching, "ppocr_rec")
    started = time.monotonic()
    resp = httpx.put(batching.url + "/predictions/ppocr_rec", content=REC_IMG, timeout=60)
    elapsed = time.monotonic() - started
    assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT
    # It waited maxBatchDelay for company, then ran alone.
    waited = _queue_seconds(batching, "ppocr_rec") - queued
    assert DELAY_MS / 1000 * 0.9 <= waited < DELAY_MS / 1000 + 2, waited
    assert elapsed >= waited
    delta = _delta(_batch_histogram(batching, "ppocr_rec"), before)
    assert delta["count"] == 1 and delta["sum"] == 1 and delta["le=1.0"] == 1


# -- a full job queue and a stuck worker ------------------------------------------------------


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """ocr with a job queue of two; ppocr_rec with a two-second response timeout."""
    models = {"ppocr_rec": {"1.0": {"responseTimeout": 2}}}
    server = ServerProcess(
        tmp_path_factory.mktemp("loaded"), "--models", "ocr", "ppocr_rec",
        "--job-queue-size", "2", "--batch-size", "1", "--models-json", json.dumps(models),
    )  # fmt: skip
    yield from running(server)


def test_full_queue_answers_503_and_drops_nothing(loaded: ServerProcess) -> None:
    def call(i: int) -> tuple[int, str, Any]:
        r = httpx.put(loaded.url + "/predictions/ocr", content=DET_IMG, timeout=120)
        return r.status_code, r.headers.get("content-type", ""), r.json()

    answers = _together(10, call)  # one answer each, or pool.map would raise
    codes = [status for status, _, _ in answers]
    assert set(codes) <= {200, 503}, codes
    assert 503 in codes, codes
    # One job in the worker and job_queue_size waiting are served (TorchServe: 3 of 8); a
    # fourth only if the first finished before the last request came.
    assert 2 <= codes.count(200) <= 4, codes
    for status, ctype, body in answers:
        assert ctype.startswith("application/json")
        if status == 200:
            assert sorted(line["text"] for line in body["result"]) == GT_TEXTS
        else:
            assert set(body) == {"code", "type", "message"}
            assert body["code"] == 503 and body["type"] == "ServiceUnavailableException"
            assert "job_queue_size=2" in body["message"]
    # The queue drains: the model serves again, its queue empty.
    resp = httpx.put(loaded.url + "/predictions/ocr", content=DET_IMG, timeout=120)
    assert resp.status_code == 200
    (desc,) = httpx.get(loaded.management_url + "/models/ocr").json()
    assert desc["jobQueueStatus"] == {"remainingCapacity": 2, "pendingRequests": 0}


def _worker_pid(srv: ServerProcess, model: str) -> int:
    (desc,) = httpx.get(f"{srv.management_url}/models/{model}").json()
    (worker,) = desc["workers"]
    assert worker["status"] == "READY"
    return int(worker["pid"])


def _child_of(pid: int, parent: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and int(fields[1]) == parent


def test_stuck_worker_times_out_and_is_replaced(loaded: ServerProcess) -> None:
    stuck = _worker_pid(loaded, "ppocr_rec")
    os.kill(stuck, signal.SIGSTOP)
    try:
        started = time.monotonic()
        resp = httpx.put(loaded.url + "/predictions/ppocr_rec", content=REC_IMG, timeout=60)
        elapsed = time.monotonic() - started
        assert resp.status_code == 504, resp.text
        assert resp.headers["content-type"] == "application/json"
        body = resp.json()
        assert set(body) == {"code", "type", "message"}
        assert body["code"] == 504 and body["type"] == "WorkerTimeoutException"
        assert 1.8 <= elapsed < 10, elapsed  # responseTimeout is 2 s
        # The stuck process is killed and a new one serves.
        deadline = time.monotonic() + 30
        while _child_of(stuck, loaded.proc.pid):
            assert time.monotonic() < deadline, "the stuck worker was not killed"
            time.sleep(0.05)
        loaded.wait_healthy(30)
        resp = httpx.put(loaded.url + "/predictions/ppocr_rec", content=REC_IMG, timeout=60)
        assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT
        assert _worker_pid(loaded, "ppocr_rec") != stuck
    finally:
        if _child_of(stuck, loaded.proc.pid):  # never leave a stopped process behind
            os.kill(stuck, signal.SIGCONT)
            os.kill(stuck, signal.SIGKILL)
