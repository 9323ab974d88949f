"""Shared test helpers: paths, a real server on free loopback ports, and the skip rules of
tests/prerequisites.py applied to every test."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocrserve.server.launcher import LocalServer, free_port
from tests.prerequisites import SHARED, SHARED_SKIP_REASON, forbidden_skip, shared_path

__all__ = [
    "DEMO",
    "ENGINES",
    "REPO",
    "SHARED",
    "ServerProcess",
    "engine_args",
    "free_port",
    "running",
]

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "shared(*paths): reads these paths under ../shared (tests/prerequisites.py)"
    )
    # Ray 2.60 turns token authentication on for `ray start --head` whenever ~/.ray/auth_token
    # exists (any local `ray.init()` writes one), while a driver joining by address then goes
    # without it: one stray token file split every later test cluster from its own drivers.
    # The tests' loopback clusters, their drivers and the servers all say the same mode.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")


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


class ServerProcess(LocalServer):
    """The checkout's ``ocrserve start --foreground`` on free loopback ports, working in ``tmp``."""

    def __init__(
        self, tmp: Path, *extra: str, env: dict[str, str] | None = None, auth: bool = False
    ) -> None:
        super().__init__(tmp, *extra, env=env, auth=auth, pythonpath=REPO)


def running(server: ServerProcess) -> Iterator[ServerProcess]:
    """Body of a server fixture: wait until healthy, hand it out, then stop it cleanly."""
    try:
        server.wait_healthy()
        yield server
    finally:
        assert server.stop() == 0


#: The engines the API conformance tests run against (``params=ENGINES`` on a server fixture).
ENGINES = ("local", "ray")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """One two-node Ray cluster on loopback for the whole session (tests/ray_cluster.py)."""
    from tests.ray_cluster import RAY_SKIP_REASON, RayCluster, ray_installed

    if not ray_installed():
        pytest.skip(RAY_SKIP_REASON)
    cluster = RayCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def engine_args(request: pytest.FixtureRequest, engine: str | None = None) -> tuple[str, ...]:
    """``ocrserve start`` options for ``engine``, else the one a parametrised fixture stands
    for (``params=ENGINES``)."""
    if (engine or getattr(request, "param", "local")) != "ray":
        return ()
    from tests.ray_cluster import REPLICA_CPUS

    cluster = request.getfixturevalue("ray_cluster")
    return ("--engine", "ray", "--ray-address", cluster.address,
            "--ray-replica-cpus", REPLICA_CPUS)  # fmt: skip


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
