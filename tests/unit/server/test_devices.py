"""Cores and GPUs: threads per worker, visible GPUs, round-robin assignment."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("value", "count"),
    [("0", 1), ("0,1", 2), ("", 0), ("-1", 0), ("0,-1,1", 1), ("GPU-1234,GPU-5678", 2)],
)
def test_visible_gpus_follows_cuda_visible_devices(
    monkeypatch: pytest.MonkeyPatch, value: str, count: int
) -> None:
    from ocrserve.server.devices import visible_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    assert visible_gpus() == count


def test_gpu_pool_hands_gpus_out_round_robin() -> None:
    from ocrserve.server.devices import GpuPool

    pool = GpuPool(2)
    assert [pool.take() for _ in range(5)] == [0, 1, 0, 1, 0]
    assert GpuPool(0).take() is None
