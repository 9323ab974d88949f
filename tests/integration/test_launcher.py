"""`LocalServer`: ports chosen below the ephemeral range, and a server that lost a port to
another process between `free_port()` and its bind is started again on other ports."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from ocrserve.server import launcher
from tests.conftest import ServerProcess


def test_free_ports_are_below_the_ephemeral_range() -> None:
    low, _ = launcher._ephemeral_range()
    ports = {launcher.free_port() for _ in range(20)}
    assert all(p < low for p in ports) and len(ports) > 1


def test_a_port_taken_before_the_bind_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    real = launcher.free_port
    first = iter([taken.getsockname()[1]])

    def racy() -> int:  # the first port handed out is already bound by someone else
        return next(first, None) or real()

    monkeypatch.setattr(launcher, "free_port", racy)
    store = tmp_path / "store"
    store.mkdir()
    server = ServerProcess(tmp_path, "--model-store", str(store), "--models", "all")
    try:
        server.wait_healthy(healthy=False)
        assert server.port_retries == 1
        assert httpx.get(f"{server.url}/ping").status_code in (200, 500)
    finally:
        server.stop()
        taken.close()
