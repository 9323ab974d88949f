"""``--engine ray`` on a real two-node Ray cluster of this machine (tests/ray_cluster.py):
placement across nodes, a replica killed under load, ``/ping`` while a model has no live
replica, and a node lost. The API conformance for Ray is test_inference_api.py and
test_management_api.py, parametrised by engine."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from ocrserve.archives.bundled import build_bundled_archive
from ocrserve.server.instance import read_pid
from tests.conftest import DEMO, REPO, ServerProcess, free_port, running
from tests.ray_cluster import REPLICA_CPUS, RayCluster

pytestmark = pytest.mark.slow

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
MODEL = "ppocr_rec"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("store")
    build_bundled_archive(MODEL, folder)
    return folder


@pytest.fixture(scope="module")
def srv(
    tmp_path_factory: pytest.TempPathFactory, ray_cluster: RayCluster, store: Path
) -> Iterator[ServerProcess]:
    """The default placement (no ``ray_max_replicas_per_node``)."""
    server = ServerProcess(
        tmp_path_factory.mktemp("ray"), "--model-store", str(store), "--models", f"{MODEL}.mar",
        "--engine", "ray", "--ray-address", ray_cluster.address,
        "--ray-replica-cpus", REPLICA_CPUS, "--enable-model-api",
    )  # fmt: skip
    yield from running(server)


def _describe(srv: ServerProcess) -> dict[str, Any]:
    (desc,) = httpx.get(f"{srv.management_url}/models/{MODEL}", timeout=10).json()
    return dict(desc)


def _scale(srv: ServerProcess, count: int) -> None:
    url = f"{srv.management_url}/models/{MODEL}?min_worker={count}&synchronous=true"
    assert httpx.put(url, timeout=120).status_code == 200


def _wait_ready(srv: ServerProcess, count: int, timeout: float = 90) -> list[dict[str, Any]]:
    """Poll describe until exactly ``count`` workers are READY; return them."""
    deadline = time.monotonic() + timeout
    while True:
        workers = _describe(srv)["workers"]
        if len(workers) == count and all(w["status"] == "READY" for w in workers):
            return list(workers)
        assert time.monotonic() < deadline, workers
        time.sleep(0.2)


def _predict(srv: ServerProcess) -> httpx.Response:
    return httpx.post(f"{srv.url}/predictions/{MODEL}", content=REC_IMG, timeout=60)


def _scale_from_zero(srv: ServerProcess, count: int) -> list[dict[str, Any]]:
    """``count`` new replicas placed together: Ray's SPREAD puts them on different nodes."""
    _scale(srv, 0)
    _scale(srv, count)
    return _wait_ready(srv, count)


def test_two_replicas_one_on_each_node(srv: ServerProcess, ray_cluster: RayCluster) -> None:
    """The default: two replicas started together are spread (Serve's SPREAD is round robin
    over the nodes; a replica added later to a running one is not kept off its node)."""
    workers = _scale_from_zero(srv, 2)
    nodes = {w["node"] for w in workers}
    assert len(nodes) == 2 and ray_cluster.node2_id() in nodes, workers
    assert all(int(w["id"]) >= 9000 and w["pid"] > 0 for w in workers)
    assert _predict(srv).json()["text"] == "serving"


def test_capped_replica_added_later_goes_to_the_other_node(
    tmp_path: Path, ray_cluster: RayCluster, store: Path
) -> None:
    """``ray_max_replicas_per_node=1``: a running replica, scaled to 2, gets its peer on the
    other node whatever Ray's round robin says; a third replica has no node to go to and waits
    (the cap is a hard one), while the two serve (over Ray actor calls here:
    ``ray_replica_grpc=false``; the module's server uses the default gRPC channel)."""
    server = ServerProcess(
        tmp_path, "--model-store", str(store), "--models", f"{MODEL}.mar", "--engine", "ray",
        "--ray-address", ray_cluster.address, "--ray-replica-cpus", REPLICA_CPUS,
        "--ray-max-replicas-per-node", "1", "--no-ray-replica-grpc",
    )  # fmt: skip
    try:
        server.wait_healthy()
        (first,) = _wait_ready(server, 1)
        _scale(server, 2)
        workers = _wait_ready(server, 2)
        assert {w["node"] for w in workers} == {n["id"] for n in ray_cluster.nodes()}, workers
        assert first["pid"] in {w["pid"] for w in workers}  # scaling up kept the first one
        url = f"{server.management_url}/models/{MODEL}?min_worker=3"
        assert httpx.put(url, timeout=30).status_code == 202
        time.sleep(6)  # Serve has tried to place the third one by now
        workers = _describe(server)["workers"]
        assert sorted(w["status"] for w in workers) == ["LOADING", "READY", "READY"], workers
        assert _predict(server).json()["text"] == "serving"
    finally:
        assert server.stop() == 0


def test_killed_replica_mid_load_answers_5xx_never_hangs(srv: ServerProcess) -> None:
    _scale(srv, 2)
    victim = _wait_ready(srv, 2)[0]
    stop = time.monotonic() + 8

    def client() -> list[tuple[int, Any]]:
        out = []
        while time.monotonic() < stop:
            resp = _predict(srv)  # a hang fails here (timeout), a dropped connection too
            out.append((resp.status_code, resp.json()))
        return out

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(client) for _ in range(6)]
        time.sleep(2)
        os.kill(victim["pid"], signal.SIGKILL)
        answers = [a for f in futures for a in f.result()]
    failed = [(code, body) for code, body in answers if code != 200]
    assert all(body["text"] == "serving" for code, body in answers if code == 200)
    for code, body in failed:
        assert code >= 500 and set(body) == {"code", "type", "message"}, body
    assert len(failed) <= 6, failed  # at most the requests the replica held
    assert len(answers) - len(failed) > 10
    workers = _wait_ready(srv, 2)  # Ray replaced it
    assert victim["pid"] not in {w["pid"] for w in workers}


def test_ping_unhealthy_while_no_replica_is_live(srv: ServerProcess) -> None:
    _scale(srv, 1)
    (only,) = _wait_ready(srv, 1)
    os.kill(only["pid"], signal.SIGKILL)
    seen, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        resp = httpx.get(f"{srv.url}/ping", timeout=5)
        seen.append((resp.status_code, resp.json()["status"]))
        if seen[-1] == (200, "Healthy") and (500, "Unhealthy") in seen:
            break
        time.sleep(0.1)
    assert (500, "Unhealthy") in seen and seen[-1] == (200, "Healthy"), seen[-5:]
    assert _predict(srv).status_code == 200


def test_replica_that_cannot_load_fails_the_registration(srv: ServerProcess, store: Path) -> None:
    """An archive the server accepts but no replica can load (its ONNX file is junk): Serve
    gives up (DEPLOY_FAILED) and the synchronous registration says why, as a local worker's
    failure would, instead of waiting for its startup timeout."""
    with zipfile.ZipFile(store / f"{MODEL}.mar") as src:
        files = {n: src.read(n) for n in src.namelist()}
    files["rec.onnx"] = b"not an onnx graph"
    with zipfile.ZipFile(store / "broken.mar", "w") as out:
        for name, data in files.items():
            out.writestr(name, data)
    url = f"{srv.management_url}/models?url=broken.mar&model_name=broken&initial_workers=1"
    started = time.monotonic()
    resp = httpx.post(f"{url}&synchronous=true", timeout=150)
    assert resp.status_code == 500, resp.text
    assert resp.json()["message"].startswith("Failed to start workers for model broken: Ray")
    assert time.monotonic() - started < 100  # startupTimeout is 120 s
    missing = httpx.get(f"{srv.management_url}/models/broken", timeout=10)
    assert missing.status_code == 404  # unregistered again
    assert _predict(srv).json()["text"] == "serving"


def test_batch_size_gathers_concurrent_requests(srv: ServerProcess) -> None:
    """A model with ``batchSize`` > 1 goes through ``@serve.batch`` (a model with 1 skips
    it): 4 requests sent together within ``maxBatchDelay`` reach the replica as batches
    larger than one, and each gets its own right answer."""
    url = (
        f"{srv.management_url}/models?url={MODEL}.mar&model_name=batched&initial_workers=1"
        "&batch_size=4&max_batch_delay=2000&synchronous=true"
    )
    assert httpx.post(url, timeout=150).status_code == 200
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: httpx.post(
                f"{srv.url}/predictions/batched", content=REC_IMG, timeout=60
            ), range(4)))  # fmt: skip
        assert [a.json()["text"] for a in answers] == ["serving"] * 4
        text = httpx.get(f"{srv.metrics_url}/metrics", timeout=10).text
        (family,) = [
            f for f in text_string_to_metric_families(text) if f.name == "ocrserve_batch_size"
        ]
        sizes = {s.name: s.value for s in family.samples if s.labels.get("model_name") == "batched"}
        total, batches = sizes["ocrserve_batch_size_sum"], sizes["ocrserve_batch_size_count"]
        assert total == 4 and batches < 4, text
        # The replica reports its resident size after each batch, as a local worker does.
        memory = [
            s.value
            for f in text_string_to_metric_families(text)
            if f.name == "WorkerMemoryUsed"
            for s in f.samples
            if s.labels["WorkerName"].startswith("W-9") and "-batched_" in s.labels["WorkerName"]
        ]
        assert len(memory) == 1 and 20 < memory[0] < 4000, text
    finally:
        httpx.delete(f"{srv.management_url}/models/batched", timeout=60)


def test_ray_client_address_serves(tmp_path: Path, ray_cluster: RayCluster) -> None:
    """``--ray-address ray://`` (Ray Client, as the KubeRay recipe uses): another model, so the
    module's server keeps its own application."""
    server = ServerProcess(
        tmp_path, "--models", "ppocr_det", "--engine", "ray",
        "--ray-address", ray_cluster.client_address, "--ray-replica-cpus", REPLICA_CPUS,
    )  # fmt: skip
    try:
        server.wait_healthy()
        image = (DEMO / "demo_text_det.jpg").read_bytes()
        resp = httpx.post(f"{server.url}/predictions/ppocr_det", content=image, timeout=60)
        assert resp.status_code == 200 and resp.json(), resp.text
        (desc,) = httpx.get(f"{server.management_url}/models/ppocr_det").json()
        assert [w["status"] for w in desc["workers"]] == ["READY"]
    finally:
        assert server.stop() == 0


def test_requests_beyond_the_replicas_room_wait_in_the_job_queue(
    tmp_path: Path, ray_cluster: RayCluster
) -> None:
    """The server sends a model's replicas no more than they hold (4 requests each) and keeps
    the rest in its own line of at most ``job_queue_size``, as the local engine's job queue
    (beyond it: 503): 10 page requests at once to one replica, queue of 2, answer 6 (4 in the
    replica, 2 waiting; more only if one finished before the last came) and refuse the rest."""
    server = ServerProcess(
        tmp_path, "--models", "ppocr_det", "--engine", "ray",
        "--ray-address", ray_cluster.address, "--ray-replica-cpus", REPLICA_CPUS,
        "--job-queue-size", "2", "--threads-per-worker", "1",
    )  # fmt: skip
    try:
        server.wait_healthy()
        # A page of 3 x 3 demo pages (one thread: about a second each), and the 10 requests
        # sent together: all arrive while the first 4 are in the replica.
        demo = Image.open(DEMO / "demo_text_det.jpg").convert("RGB")
        tiled = Image.new("RGB", (3 * demo.width, 3 * demo.height))
        for i in range(9):
            tiled.paste(demo, (i % 3 * demo.width, i // 3 * demo.height))
        buf = io.BytesIO()
        tiled.save(buf, "JPEG")
        page = buf.getvalue()
        url = f"{server.url}/predictions/ppocr_det"
        together = threading.Barrier(10)

        def call(_: int) -> httpx.Response:
            with httpx.Client(timeout=120) as client:
                client.get(f"{server.url}/ping")  # the connection is open before the barrier
                together.wait()
                return client.post(url, content=page)

        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(call, range(10)))
        codes = [a.status_code for a in answers]
        assert set(codes) == {200, 503} and 6 <= codes.count(200) <= 9, codes
        for answer in answers:
            if answer.status_code == 503:
                body = answer.json()
                assert body["type"] == "ServiceUnavailableException"
                assert "job_queue_size=2" in body["message"]
            else:
                assert answer.json()["boundary_result"]
        (desc,) = httpx.get(f"{server.management_url}/models/ppocr_det").json()
        assert desc["jobQueueStatus"] == {"remainingCapacity": 2, "pendingRequests": 0}
    finally:
        assert server.stop() == 0


def test_node_lost_moves_its_replicas(srv: ServerProcess, ray_cluster: RayCluster) -> None:
    node2 = ray_cluster.node2_id()
    assert node2 in {w["node"] for w in _scale_from_zero(srv, 2)}
    try:
        ray_cluster.stop_node2()
        workers = _wait_ready(srv, 2, timeout=120)
        assert node2 not in {w["node"] for w in workers}, workers
        assert _predict(srv).json()["text"] == "serving"
    finally:
        if ray_cluster.node2 is None:
            ray_cluster.start_node2()  # for the tests that follow


def _log_time(line: str) -> float:
    """The time of a server log line (``2026-12-07 23:30:34,846 INFO ...``)."""
    return time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + int(line[20:23]) / 1000


def test_start_says_which_model_waits_for_which_resources_then_fails_at_the_startup_timeout(
    tmp_path: Path, store: Path
) -> None:
    """Two models of one CPU each on a one-CPU cluster: one runs, Ray cannot place the other.
    ``ocrserve start`` says at once which model waits for which resources (the log, describe,
    its progress) and fails at the startup timeout with that reason."""
    cluster = RayCluster(nodes=1, head_cpus=1)
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(free_port())
    inference, management, metrics = (f"http://127.0.0.1:{port}" for port in ports)
    log_path = tmp_path / "logs" / "ocrserve.log"
    start = subprocess.Popen(
        [sys.executable, "-m", "ocrserve", "start", "--model-store", str(store),
         "--models", f"a={MODEL}.mar", f"b={MODEL}.mar", "--engine", "ray",
         "--ray-address", cluster.address, "--ray-replica-cpus", "1",
         "--default-startup-timeout", "10", "--disable-token-auth",
         "--inference-address", inference, "--management-address", management,
         "--metrics-address", metrics, "--pid-file", str(tmp_path / "ocrserve.pid"),
         "--log-location", str(tmp_path / "logs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        waiting, described = "", {}
        deadline = time.monotonic() + 90
        while not waiting and time.monotonic() < deadline and start.poll() is None:
            time.sleep(0.5)
            for name in ("a", "b"):
                try:
                    answer = httpx.get(f"{management}/models/{name}", timeout=5)
                except httpx.HTTPError:
                    continue
                if answer.status_code == 200 and "rayPending" in answer.json()[0]:
                    waiting, described = name, answer.json()[0]
        why = "1 replica waits for a Ray node with CPU 1 free (the cluster has CPU 0 of 1 free)"
        assert waiting and described["rayPending"].startswith(why), (described, start.poll())
        assert described["status"] == "Unhealthy"
        lines = log_path.read_text().splitlines()
        started = next(line for line in lines if "Started server process" in line)
        said = next(line for line in lines if f"model {waiting}: {why}" in line)
        # Serve creates the replica's actor (3-4 s on a busy 2-core machine), then 2 s unplaced
        assert _log_time(said) - _log_time(started) < 12, (started, said)
        _, err = start.communicate(timeout=120)
        assert start.returncode == 1, err
        assert f"({waiting}: {why}" in err  # the start's progress line
        assert f"{waiting}: no replica placed within startupTimeout (10 s): {why}" in err
    finally:
        if start.poll() is None:
            start.kill()
            start.communicate()
        server = read_pid(str(tmp_path / "ocrserve.pid"))
        if server is not None:
            os.kill(server, signal.SIGKILL)
        cluster.stop()
