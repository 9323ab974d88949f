"""The job queue and the supervisor's loop, with a fake worker: nothing lost or hung when a
supervisor is retired or stopped at any of its await points, dead workers replaced.

`FakeWorker` stands in for `ocrserve.server.process.Worker`: a thread pool, a pipe whose read
end is its "process sentinel" (closing the write end is the process dying), and delays for its
start, load and batches.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ocrserve.archives.spec import ModelSpec
from ocrserve.errors import (
    InternalServerError,
    ModelLoadError,
    OcrServeError,
    ServiceUnavailable,
    WorkerTimeout,
)
from ocrserve.server import supervisor as supervisor_module
from ocrserve.server.engine import Engine, ModelRuntime
from ocrserve.server.jobs import Job, JobQueue
from ocrserve.server.process import FrameTimeout
from ocrserve.server.supervisor import _Progress, page_ranges
from ocrserve.settings import ModelConfig, Settings

SPEC = ModelSpec(name="m", version="1.0", task="textrecog", model_dir=".", url="m.mar")


class FakeProcess:
    def __init__(self) -> None:
        self.sentinel, self._w = os.pipe()
        self._lock = threading.Lock()
        self.alive = True

    def is_alive(self) -> bool:
        return self.alive

    def die(self) -> None:
        with self._lock:
            if self.alive:
                self.alive = False
                os.close(self._w)


class FakeWorker:
    """Behaviour is set on the class by each test (``start_s``, ``load_s``, ``load_error``,
    ``batch_s``); every instance is kept in ``made``."""

    made: list[FakeWorker] = []
    start_s = 0.0
    load_s = 0.0
    load_error: OcrServeError | None = None
    batch_s = 0.0

    def __init__(self, wid: int, spec: ModelSpec, *args: Any, gpu: int | None = None) -> None:
        time.sleep(self.start_s)
        self.id = wid
        self.pid = 10_000 + wid
        self.device = "cpu"
        self.status = "LOADING"
        self.start_time = time.time()
        self.process = FakeProcess()
        self.executor = ThreadPoolExecutor(1)
        self.killed = False
        type(self).made.append(self)

    def wait_ready(self, timeout: float) -> None:
        time.sleep(self.load_s)
        if self.load_error is not None:
            raise self.load_error

    def exchange(
        self,
        bodies: list[bytes],
        options: list[dict[str, Any]] | None,
        batch: int,
        on_event: Callable[[dict[str, Any]], None],
        timeout: float,
    ) -> list[dict[str, Any]]:
        if self.batch_s > timeout:
            time.sleep(timeout)
            raise FrameTimeout(timeout)
        time.sleep(self.batch_s)
        if not self.process.alive:
            raise EOFError("worker died")
        return [{"ok": {"body": b.decode(), "batch": len(bodies)}} for b in bodies]

    def cancel(self, batch: int, indexes: list[int]) -> None:
        pass

    def memory_usage(self) -> int:
        return 0

    def kill(self) -> None:
        self.process.die()
        self.killed = True
        self.status = "STOPPED"
        self.executor.shutdown(wait=False)


@pytest.fixture(autouse=True)
def fake_worker(monkeypatch: pytest.MonkeyPatch) -> type[FakeWorker]:
    class Fake(FakeWorker):
        made: list[FakeWorker] = []

    monkeypatch.setattr(supervisor_module, "Worker", Fake)
    return Fake


def _engine(**config: Any) -> tuple[Engine, ModelRuntime]:
    engine = Engine(Settings(number_of_gpu=0))
    runtime = engine.register(SPEC, ModelConfig(**{"min_workers": 0, "max_workers": 4, **config}))
    return engine, runtime


async def _until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def _run(test: Callable[[], Awaitable[None]], timeout: float = 20.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(test(), timeout)

    asyncio.run(bounded())


def _infer(engine: Engine, body: bytes) -> asyncio.Task[Any]:
    return asyncio.ensure_future(engine.infer("m", None, body))


def _all_killed(fake: type[FakeWorker]) -> bool:
    return all(w.killed for w in fake.made)


# -- the job queue ------------------------------------------------------------------------------


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


def test_taker_cancelled_while_filling_puts_its_jobs_back_in_order() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        q = JobQueue(10)
        jobs = [_job(loop, i) for i in range(2)]
        for job in jobs:
            q.put(job)
        held: list[Job] = []
        taker = asyncio.create_task(q.take(4, 10.0, batch=held))
        await _until(lambda: len(held) == 2)
        taker.cancel()
        await asyncio.wait({taker})
        assert len(q) == 2 and held == []
        batch = await asyncio.wait_for(q.take(4, 0.0), 1.0)
        assert [j.body for j in batch] == [b"\0", b"\1"]

    _run(run)


def test_woken_then_cancelled_taker_passes_the_wake_up_on() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        q = JobQueue(10)
        first = asyncio.create_task(q.take(1, 0.0))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(q.take(1, 0.0))
        await asyncio.sleep(0.01)
        q.put(_job(loop, 5))  # wakes `first` ...
        first.cancel()  # ... which is cancelled before it runs
        batch = await asyncio.wait_for(second, 1.0)
        assert batch[0].body == b"\5"

    _run(run)


def test_until_returns_a_partial_batch_at_once() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        q = JobQueue(10)
        until: asyncio.Future[None] = loop.create_future()
        q.put(_job(loop, 1))
        taker = asyncio.create_task(q.take(4, 10.0, until))
        await asyncio.sleep(0.05)
        until.set_result(None)
        batch = await asyncio.wait_for(taker, 0.5)
        assert [j.body for j in batch] == [b"\1"]
        assert await asyncio.wait_for(q.take(4, 10.0, until), 0.5) == []  # nothing: at once

    _run(run)


# -- the supervisor, cancelled at each await point ------------------------------------------------


def test_retired_while_spawning_leaves_no_worker(fake_worker: type[FakeWorker]) -> None:
    fake_worker.start_s = 0.3

    async def run() -> None:
        _, rt = _engine()
        rt.scale(1)
        await asyncio.sleep(0.1)  # inside the worker's start (on a thread)
        rt.scale(0)
        await _until(lambda: len(fake_worker.made) == 1 and _all_killed(fake_worker))
        assert not rt.supervisors and not rt.workers

    _run(run)


def test_stopped_while_loading_kills_the_worker(fake_worker: type[FakeWorker]) -> None:
    fake_worker.load_s = 0.5

    async def run() -> None:
        _, rt = _engine()
        rt.scale(2)
        await _until(lambda: len(fake_worker.made) == 2)
        await rt.stop()
        await _until(lambda: _all_killed(fake_worker))

    _run(run)


def test_stopped_during_back_off_leaves_no_worker(fake_worker: type[FakeWorker]) -> None:
    fake_worker.load_error = InternalServerError("worker exited while loading m")

    async def run() -> None:
        _, rt = _engine()
        rt.scale(1)
        await _until(lambda: rt.load_error is not None)
        assert "loadFailed" not in rt.describe("1.0")  # tried again
        await asyncio.sleep(0.05)  # now in the back-off sleep
        started = time.monotonic()
        await rt.stop()
        assert time.monotonic() - started < 0.5
        await _until(lambda: _all_killed(fake_worker))
        assert len(fake_worker.made) == 1

    _run(run)


def test_load_error_retrying_cannot_fix_fails_the_model_at_once(
    fake_worker: type[FakeWorker],
) -> None:
    fake_worker.load_error = ModelLoadError("No module named 'nothing'")

    async def run() -> None:
        engine, rt = _engine()
        engine.scale("m", None, 1, 1)
        await _until(lambda: not rt.supervisors)
        assert rt.load_error == "No module named 'nothing'"
        assert rt.describe("1.0")["status"] == "Unhealthy"
        assert rt.describe("1.0")["loadFailed"] is True
        with pytest.raises(ServiceUnavailable, match="failed to load .No module named"):
            await engine.infer("m", None, b"x")
        await asyncio.sleep(1.2)  # no retry
        assert len(fake_worker.made) == 1 and _all_killed(fake_worker)

    _run(run)


def test_retired_while_idle_loses_nothing(fake_worker: type[FakeWorker]) -> None:
    async def run() -> None:
        engine, rt = _engine()
        rt.scale(1)
        await _until(lambda: rt.ready_workers == 1)
        rt.scale(0)
        await _until(lambda: _all_killed(fake_worker) and not rt._retiring)
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable, match="no worker"):
            await engine.infer("m", None, b"x")
        assert time.monotonic() - started < 0.1

    _run(run)


@pytest.mark.parametrize("workers", [1, 2])
def test_retired_while_filling_a_batch_sends_it_at_once(
    fake_worker: type[FakeWorker], workers: int
) -> None:
    async def run() -> None:
        engine, rt = _engine(batch_size=4, max_batch_delay=10_000)
        rt.scale(workers)
        await _until(lambda: rt.ready_workers == workers)
        request = _infer(engine, b"a")
        await _until(lambda: any(s.holding for s in rt.supervisors))
        rt.scale(workers - 1)  # the one filling a batch retires first
        result = await asyncio.wait_for(request, 0.5)
        assert result.future.result() == {"body": "a", "batch": 1}

    _run(run)


def test_stopped_while_filling_a_batch_answers_503(fake_worker: type[FakeWorker]) -> None:
    async def run() -> None:
        engine, rt = _engine(batch_size=4, max_batch_delay=10_000)
        rt.scale(1)
        await _until(lambda: rt.ready_workers == 1)
        request = _infer(engine, b"a")
        await _until(lambda: any(s.holding for s in rt.supervisors))
        await engine.unregister("m")
        with pytest.raises(ServiceUnavailable):
            await asyncio.wait_for(request, 0.5)
        assert _all_killed(fake_worker)

    _run(run)


def test_scaled_to_zero_while_busy_finishes_the_batch_and_fails_the_queue(
    fake_worker: type[FakeWorker],
) -> None:
    fake_worker.batch_s = 0.5

    async def run() -> None:
        engine, rt = _engine()
        rt.scale(1)
        await _until(lambda: rt.ready_workers == 1)
        running = _infer(engine, b"a")
        await _until(lambda: any(s.busy for s in rt.supervisors))
        queued = [_infer(engine, b"b"), _infer(engine, b"c")]
        await asyncio.sleep(0.01)
        rt.scale(0)
        for task in queued:  # answered at once, not after the running batch
            with pytest.raises(ServiceUnavailable):
                await asyncio.wait_for(task, 0.1)
        with pytest.raises(ServiceUnavailable):
            await asyncio.wait_for(engine.infer("m", None, b"d"), 0.1)
        assert (await asyncio.wait_for(running, 2.0)).future.result()["body"] == "a"
        await _until(lambda: _all_killed(fake_worker))

    _run(run)


def test_stopped_during_a_batch_answers_503(fake_worker: type[FakeWorker]) -> None:
    fake_worker.batch_s = 0.5

    async def run() -> None:
        engine, rt = _engine()
        rt.scale(1)
        await _until(lambda: rt.ready_workers == 1)
        running = _infer(engine, b"a")
        await _until(lambda: any(s.busy for s in rt.supervisors))
        await engine.unregister("m")
        with pytest.raises(ServiceUnavailable, match="unloaded"):
            await asyncio.wait_for(running, 0.1)

    _run(run)


def test_worker_dying_idle_is_replaced_and_nothing_is_lost(fake_worker: type[FakeWorker]) -> None:
    fake_worker.load_s = 0.2  # the replacement's load: long enough to see no ready worker

    async def run() -> None:
        engine, rt = _engine(batch_size=4, max_batch_delay=300)
        rt.scale(1)
        await _until(lambda: rt.ready_workers == 1)
        first = fake_worker.made[0]
        request = _infer(engine, b"a")
        await _until(lambda: any(s.holding for s in rt.supervisors))
        first.process.die()  # while its supervisor fills a batch
        await _until(lambda: rt.ready_workers == 0, 0.5)
        result = await asyncio.wait_for(request, 2.0)
        assert result.future.result()["body"] == "a"
        assert len(fake_worker.made) == 2 and first.killed
        assert rt.workers[0] is fake_worker.made[1]

    _run(run)


def test_worker_dying_during_a_batch_answers_500_and_is_replaced(
    fake_worker: type[FakeWorker],
) -> None:
    fake_worker.batch_s = 0.3

    async def run() -> None:
        engine, rt = _engine()
        rt.scale(1)
        await _until(lambda: rt.ready_workers == 1)
        running = _infer(engine, b"a")
        await _until(lambda: any(s.busy for s in rt.supervisors))
        fake_worker.made[0].process.die()
        with pytest.raises(InternalServerError, match="died"):
            await asyncio.wait_for(running, 2.0)
        await _until(lambda: rt.ready_workers == 1)
        assert (await engine.infer("m", None, b"b")).future.result()["body"] == "b"

    _run(run)


# -- documents: the timeout applies to each page -----------------------------------------------


def test_page_ranges() -> None:
    assert page_ranges([3, 4, 5, 9]) == "3-5,9"
    assert page_ranges([7]) == "7"
    assert page_ranges([1, 3, 4]) == "1,3-4"


def test_a_stalled_page_gets_its_error_and_its_document_goes_on() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        image, document, later = (Job(b"x", loop.create_future()) for _ in range(3))
        document.events = asyncio.Queue()
        progress = _Progress([image, document, later])
        progress.event({"event": "answer", "index": 0, "answer": {"ok": {"text": "x"}}})
        progress.event({"event": "document", "index": 1, "pages": [2, 3, 4, 5]})
        progress.event({"event": "page", "index": 1, "page": {"page": 2, "result": []}})
        requeue = progress.timed_out(7, "m")
        assert requeue == [document, later]  # the rest of the document, a document not begun
        assert image.future.result() == {"text": "x"}
        assert [p["page"] for p in document.pages] == [2, 3]
        assert document.pages[1]["error"]["code"] == 504
        assert "Page 3 was not read within 7 s" in document.pages[1]["error"]["message"]
        assert document.options == {"pages": "4-5"}
        events = [document.events.get_nowait() for _ in range(document.events.qsize())]
        assert [kind for kind, _ in events] == ["document", "page", "page"]
        # Read again from page 4 by another worker: the page list stays the first one.
        again = _Progress([document])
        again.event({"event": "document", "index": 0, "pages": [4, 5]})
        assert document.page_numbers == [2, 3, 4, 5] and document.remaining_pages() == [4, 5]

    _run(run)


def test_a_stalled_image_names_the_setting_to_raise() -> None:
    async def run() -> None:
        job = Job(b"x", asyncio.get_running_loop().create_future())
        assert _Progress([job]).timed_out(120, "ocr") == []
        with pytest.raises(WorkerTimeout) as info:
            job.future.result()
        assert "Model ocr did not answer within 120 s" in info.value.message
        assert "--default-response-timeout" in info.value.message

    _run(run)
