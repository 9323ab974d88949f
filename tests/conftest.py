"""Shared test helpers: paths, a real server on free loopback ports, and the skip rules of
tests/prerequisites.py applied to every test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.prerequisites import SHARED, SHARED_SKIP_REASON, forbidden_skip, shared_path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "shared(*paths): reads these paths under ../shared (tests/prerequisites.py)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if SHARED.is_dir():
        return
    for item in items:
        if item.get_closest_marker("shared"):  # first, before an empty parameter set's skip
            item.add_marker(pytest.mark.skip(reason=SHARED_SKIP_REASON), append=False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if SHARED.is_dir():
        for mark in item.iter_markers("shared"):
            for path in mark.args:
                shared_path(path)


def _fail_forbidden_skip(report: pytest.TestReport | pytest.CollectReport, marked: bool) -> None:
    """Turn a skip that `forbidden_skip` forbids into a failure, saying why."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    why = forbidden_skip(reason, marked_shared=marked)
    if why:
        report.outcome = "failed"
        report.longrepr = f"{why}. The skip: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _fail_forbidden_skip(report, item.get_closest_marker("shared") is not None)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report() -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    _fail_forbidden_skip(report, False)
    return report


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``ocrserve start --foreground`` in a subprocess on free loopback ports."""

    def __init__(
        self, tmp: Path, *extra: str, env: dict[str, str] | None = None, auth: bool = False
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.management_url = f"http://127.0.0.1:{free_port()}"
        self.metrics_url = f"http://127.0.0.1:{free_port()}"
        self.cwd = tmp
        self.pid_file = tmp / "ocrserve.pid"
        self.log_path = tmp / "server.log"
        self.args = [
            sys.executable, "-m", "ocrserve", "start", "--foreground",
            "--inference-address", self.url, "--management-address", self.management_url,
            "--metrics-address", self.metrics_url,
            "--pid-file", str(self.pid_file), "--log-location", str(tmp / "logs"),
            *([] if auth else ["--disable-token-auth"]), *extra,
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")
        env = {**os.environ, **(env or {})}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO)) if p)
        self.proc = subprocess.Popen(
            self.args, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=tmp
        )

    def wait_healthy(self, timeout: float = 90.0, *, healthy: bool = True) -> None:
        """Wait until /ping says Healthy (or, with ``healthy=False``, answers at all)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                status = httpx.get(self.url + "/ping", timeout=2).status_code
                if status == 200 or not healthy:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not healthy in {timeout} s:\n{self.log()}")

    def wait_log(self, text: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"{text!r} not logged:\n{self.log()}")
            time.sleep(0.2)
        return self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)


def running(server: ServerProcess) -> Iterator[ServerProcess]:
    """Body of a server fixture: wait until healthy, hand it out, then stop it cleanly."""
    try:
        server.wait_healthy()
        yield server
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The bundled default models, served once for the whole session."""
    srv = ServerProcess(tmp_path_factory.mktemp("server"), "--job-queue-size", "64")
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c
