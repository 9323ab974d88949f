"""Shared test helpers: paths, a real server on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ocrserve.server.launcher import LocalServer, free_port

__all__ = ["DEMO", "REPO", "SHARED", "ServerProcess", "free_port", "running"]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEMO = REPO / "demo"


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
