"""The worker process's own settings (threads)."""

from __future__ import annotations

import pytest


def test_worker_threads_wait_passively(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrserve.server.worker import limit_threads

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "0")
    limit_threads(3)
    import os

    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "3"
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # a user's own choice stays
    limit_threads(3)
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
