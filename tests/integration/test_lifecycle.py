"""Server lifecycle: background start/stop, graceful stop, port in use, crashed workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import DEMO, REPO, ServerProcess, free_port

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
DET_IMG = (DEMO / "demo_text_det.jpg").read_bytes()


def _ocrserve(
    *args: str, timeout: float = 180, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocrserve", *args], capture_output=True, text=True,
        timeout=timeout, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def _tiled(image: bytes, n: int) -> bytes:
    """``image`` repeated n x n times, as PNG: many lines, so a request takes a while."""
    import io

    from PIL import Image

    tile = Image.open(io.BytesIO(image)).convert("RGB")
    big = Image.new("RGB", (tile.width * n, tile.height * n))
    for i in range(n * n):
        big.paste(tile, ((i % n) * tile.width, (i // n) * tile.height))
    out = io.BytesIO()
    big.save(out, format="PNG")
    return out.getvalue()


def _cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _worker_pids(server_pid: int) -> list[int]:
    """Pids of the server's worker processes (not multiprocessing's resource tracker)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == server_pid and b"spawn_main" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_background_start_then_stop_with_token_auth(tmp_path: Path) -> None:
    port = free_port()
    pid_file = tmp_path / "server.pid"
    args = ["--inference-address", f"http://127.0.0.1:{port}",
            "--management-address", f"http://127.0.0.1:{free_port()}",
            "--metrics-address", f"http://127.0.0.1:{free_port()}",
            "--pid-file", str(pid_file), "--log-location", str(tmp_path / "logs"),
            "--models", "ppocr_rec"]  # fmt: skip
    started = _ocrserve("start", *args, cwd=tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        assert "ocrserve started" in started.stdout
        # Token authorization is on by default; the key file is where the server started.
        key_file = tmp_path / "key_file.json"
        assert key_file.stat().st_mode & 0o777 == 0o600
        url = f"http://127.0.0.1:{port}/predictions/ppocr_rec"
        assert httpx.put(url, content=REC_IMG).status_code == 401
        key = _ocrserve("key", cwd=tmp_path).stdout.strip()
        assert key == json.loads(key_file.read_text())["inference"]["key"]
        # Returned only once healthy: the first request works at once.
        resp = httpx.put(url, content=REC_IMG, headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200
        assert int(pid_file.read_text()) > 0
        again = _ocrserve("start", *args, cwd=tmp_path)
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        stopped = _ocrserve("stop", "--pid-file", str(pid_file))
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert not pid_file.exists() and not key_file.exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/ping")
    assert (tmp_path / "logs" / "ocrserve.log").stat().st_size > 0


def test_stop_when_not_running(tmp_path: Path) -> None:
    res = _ocrserve("stop", "--pid-file", str(tmp_path / "none.pid"))
    assert res.returncode == 1 and "not running" in res.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        res = _ocrserve(
            "start",
            "--foreground",
            "--inference-address",
            f"127.0.0.1:{port}",
            "--pid-file",
            str(tmp_path / "p.pid"),
            "--models",
            "ppocr_rec",
        )
    assert res.returncode == 2
    assert "inference_address" in res.stderr and "cannot listen" in res.stderr


def test_unknown_model_name_is_a_clear_error(tmp_path: Path) -> None:
    res = _ocrserve(
        "start", "--foreground", "--models", "nope", "--pid-file", str(tmp_path / "p.pid")
    )
    assert res.returncode == 2 and "bundled models: ocr, ppocr_det, ppocr_rec" in res.stderr


def test_bad_config_value_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "config.properties"
    cfg.write_text("job_queue_size=many\n")
    res = _ocrserve("start", "--foreground", "--ts-config", str(cfg))
    assert res.returncode == 2 and "job_queue_size='many'" in res.stderr


def test_graceful_stop_finishes_in_flight_requests(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, "--models", "ocr")
    srv.wait_healthy()
    results: list[int] = []

    def call() -> None:
        r = httpx.put(srv.url + "/predictions/ocr", content=DET_IMG, timeout=60)
        results.append(r.status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # requests are in flight (each takes about a second)
    srv.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(60)
    assert srv.proc.wait(60) == 0
    assert results == [200, 200, 200]
    assert "stopped" in srv.log()


def test_killed_worker_fails_in_flight_and_is_replaced(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, "--models", "ocr")
    try:
        srv.wait_healthy()
        (worker,) = _worker_pids(srv.proc.pid)
        codes: list[int] = []
        # A page of 6 x 6 demo images keeps the worker busy for seconds even on a fast CPU.
        body = _tiled(DET_IMG, 6)

        def call() -> None:
            r = httpx.put(srv.url + "/predictions/ocr", content=body, timeout=60)
            codes.append(r.status_code)
            assert r.headers["content-type"].startswith("application/json")

        idle = _cpu_ticks(worker)
        t = threading.Thread(target=call)
        t.start()
        deadline = time.monotonic() + 30
        while _cpu_ticks(worker) < idle + 20 and time.monotonic() < deadline:  # 0.2 s of work
            time.sleep(0.02)
        os.kill(worker, signal.SIGKILL)
        t.join(30)
        assert codes and codes[0] >= 500
        srv.wait_healthy(60)  # a replacement worker serves within seconds
        r = httpx.put(srv.url + "/predictions/ocr", content=DET_IMG, timeout=60)
        assert r.status_code == 200 and r.json()["result"]
        assert worker not in _worker_pids(srv.proc.pid)
    finally:
        assert srv.stop() == 0


def test_model_that_cannot_load_keeps_server_up_and_unhealthy(tmp_path: Path) -> None:
    # A cv2 that fails the way opencv-python does on a machine without libGL.
    fake = tmp_path / "fakecv2"
    fake.mkdir()
    (fake / "cv2.py").write_text(
        "raise ImportError('libGL.so.1: cannot open shared object file: No such file')\n"
    )
    srv = ServerProcess(tmp_path, "--models", "ppocr_rec", env={"PYTHONPATH": str(fake)})
    try:
        deadline = time.monotonic() + 60
        while "opencv-python-headless" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "libGL.so.1" in srv.log() and "opencv-python-headless" in srv.log()
        resp = httpx.get(srv.url + "/ping")
        assert resp.status_code == 500 and resp.json() == {"status": "Unhealthy"}
        resp = httpx.put(srv.url + "/predictions/ppocr_rec", content=REC_IMG)
        assert resp.status_code == 503
        assert resp.json()["type"] == "ServiceUnavailableException"
    finally:
        assert srv.stop() == 0


def test_access_and_model_logs_in_the_log_folder(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, "--models", "ppocr_rec")
    try:
        srv.wait_healthy()
        httpx.put(srv.url + "/predictions/ppocr_rec", content=REC_IMG)
        httpx.put(srv.url + "/predictions/nope", content=REC_IMG)
    finally:
        assert srv.stop() == 0
    model_log = (tmp_path / "logs" / "model_log.log").read_text()
    assert "of model ppocr_rec started" in model_log
    lines = (tmp_path / "logs" / "access_log.log").read_text().splitlines()
    puts = [line for line in lines if '"PUT /predictions/' in line]
    assert len(puts) == 2
    assert " 200 " in puts[0] and " ms" in puts[0] and " 404 " in puts[1]


def test_the_log_says_started_once_naming_the_three_apis(tmp_path: Path) -> None:
    """Three uvicorn servers run in one process: one line says it started, with each API's
    address, not three identical ``Started server process`` lines."""
    srv = ServerProcess(tmp_path, "--models", "ppocr_rec")
    try:
        srv.wait_healthy()
    finally:
        assert srv.stop() == 0
    log = srv.log()
    started = [line for line in log.splitlines() if "Started server process" in line]
    assert len(started) == 1, log
    for api, url in [("inference", srv.url), ("management", srv.management_url),
                     ("metrics", srv.metrics_url)]:  # fmt: skip
        assert f"{api} API {url}" in started[0]
    assert log.count("Shutting down") <= 1 and log.count("Finished server process") <= 1, log
