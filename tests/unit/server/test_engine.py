from __future__ import annotations

import asyncio

import pytest

from ocrserve.errors import ServiceUnavailable
from ocrserve.server.devices import threads_per_worker
from ocrserve.server.supervisor import Job, JobQueue
from ocrserve.settings import Settings


def _job(loop: asyncio.AbstractEventLoop, tag: int) -> Job:
    return Job(bytes([tag]), loop.create_future())


def test_queue_bounded() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        q = JobQueue(2)
        assert q.put(_job(loop, 1)) and q.put(_job(loop, 2))
        assert not q.put(_job(loop, 3))
        assert len(q) == 2

    asyncio.run(run())


def test_batch_fills_up_to_size_without_waiting() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        q = JobQueue(10)
        for i in range(5):
            q.put(_job(loop, i))
        batch = await asyncio.wait_for(q.take(3, 10.0), 1.0)
        assert [j.body for j in batch] == [b"\0", b"\1", b"\2"]

    asyncio.run(run())


def test_batch_waits_at_most_delay() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        q = JobQueue(10)
        q.put(_job(loop, 1))
        start = loop.time()
        batch = await q.take(4, 0.05)
        assert len(batch) == 1 and 0.04 <= loop.time() - start < 1.0

    asyncio.run(run())


def test_batch_collects_late_arrivals() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        q = JobQueue(10)
        taker = asyncio.create_task(q.take(3, 0.5))
        await asyncio.sleep(0.01)
        for i in range(3):
            q.put(_job(loop, i))
            await asyncio.sleep(0.01)
        assert len(await taker) == 3

    asyncio.run(run())


def test_cancelled_taker_loses_no_job() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        q = JobQueue(10)
        taker = asyncio.create_task(q.take(1, 0))
        await asyncio.sleep(0.01)
        taker.cancel()
        q.put(_job(loop, 7))
        await asyncio.sleep(0.01)
        batch = await asyncio.wait_for(q.take(1, 0), 1.0)
        assert batch[0].body == b"\7"

    asyncio.run(run())


def test_fail_all() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        q = JobQueue(10)
        job = _job(loop, 1)
        q.put(job)
        q.fail_all(ServiceUnavailable("bye"))
        with pytest.raises(ServiceUnavailable):
            await job.future

    asyncio.run(run())


def test_every_worker_gets_every_core_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrserve.archives.spec import ModelSpec
    from ocrserve.server import devices
    from ocrserve.server.engine import Engine
    from ocrserve.settings import ModelConfig

    monkeypatch.setattr(devices, "cpu_count", lambda: 8)
    assert threads_per_worker(Settings(threads_per_worker=3)) == 3
    assert threads_per_worker(Settings()) == 8
    engine = Engine(Settings())
    spec = ModelSpec(name="a", version="1.0", url="a.mar", model_dir=".", task="textdet")
    runtime = engine.register(spec, ModelConfig(min_workers=4, max_workers=4))
    assert runtime.threads == 8


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


def test_engine_counts_gpus_from_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrserve.server.engine import Engine

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert Engine(Settings()).gpus.count == 3
    assert Engine(Settings(number_of_gpu=0)).gpus.count == 0
    assert Engine(Settings(number_of_gpu=1)).gpus.count == 1
