"""One worker's loop: keep its process alive and feed it batches from the model's job queue.

A supervisor starts its worker process, waits until it is ready, then takes batches (up to
``batch_size`` jobs, waiting at most ``max_batch_delay`` for a partial batch to fill) from the
model's bounded `JobQueue` and sends them over the pipe. A worker that dies or overruns its
response timeout fails its in-flight jobs at once and is replaced, with a back-off when
replacements keep failing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ocrserve.archives.spec import ModelSpec
from ocrserve.errors import (
    InternalServerError,
    OcrServeError,
    ServiceUnavailable,
    WorkerTimeout,
    error_from_name,
)
from ocrserve.server.devices import GpuPool
from ocrserve.server.process import Worker
from ocrserve.settings import ModelConfig

__all__ = ["EngineMetrics", "Job", "JobQueue", "SupervisedModel", "Supervisor"]

log = logging.getLogger("ocrserve.server.engine")


@dataclass
class Job:
    """One inference request waiting for (or being served by) a worker."""

    body: bytes
    future: asyncio.Future[dict[str, Any]]
    enqueued: float = field(default_factory=time.monotonic)
    #: Set when a worker takes the job: seconds it waited, and the worker's batch time.
    queue_s: float = 0.0
    handler_s: float = 0.0


class JobQueue:
    """A bounded FIFO whose consumers (the supervisors) take batches."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[Job] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, job: Job) -> bool:
        """Append a job; False when the queue is full."""
        if len(self._items) >= self.maxsize:
            return False
        self._items.append(job)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        return True

    async def _wait(self, timeout: float | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        finally:
            if not waiter.done():
                waiter.cancel()

    async def take(self, max_items: int, delay: float) -> list[Job]:
        """Wait for a first job, then up to ``delay`` seconds for the batch to fill."""
        while not self._items:
            await self._wait(None)
        batch = [self._items.popleft()]
        deadline = time.monotonic() + delay
        while len(batch) < max_items:
            if self._items:
                batch.append(self._items.popleft())
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await self._wait(remaining)
        if self._items and self._waiters:  # leftovers: wake another consumer
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        return batch

    def fail_all(self, exc: OcrServeError) -> None:
        while self._items:
            job = self._items.popleft()
            if not job.future.done():
                job.future.set_exception(exc)


class EngineMetrics(Protocol):
    """What the engine reports (implemented by `ocrserve.server.metrics.Metrics`)."""

    def record_worker_load(
        self, model: str, version: str, ms: float, *, worker_id: int | str | None = None
    ) -> None: ...

    def record_prediction(
        self, model: str, version: str | None, ms: float, batch_size: int
    ) -> None: ...


class SupervisedModel(Protocol):
    """What a supervisor reads and updates of its model version (`ModelRuntime` in the engine)."""

    spec: ModelSpec
    config: ModelConfig
    queue: JobQueue
    threads: int
    max_pixels: int
    log_dir: str | None
    metrics: EngineMetrics | None
    gpus: GpuPool | None
    load_error: str | None
    next_worker_id: int


class Supervisor:
    """Keeps one worker process alive and feeds it batches."""

    def __init__(self, runtime: SupervisedModel) -> None:
        self.runtime = runtime
        self.worker: Worker | None = None
        self.busy = False
        self.retiring = False
        self.task = asyncio.create_task(self._run())

    def retire(self) -> None:
        """Stop after the current batch (at once when idle)."""
        self.retiring = True
        if not self.busy:
            self.task.cancel()

    async def _run(self) -> None:
        rt = self.runtime
        loop = asyncio.get_running_loop()
        failures = 0
        while not self.retiring:
            rt.next_worker_id += 1
            gpu = rt.gpus.take() if rt.gpus is not None and rt.config.device_type != "cpu" else None
            worker = Worker(
                rt.next_worker_id, rt.spec, rt.threads, rt.max_pixels, rt.log_dir, gpu=gpu
            )
            self.worker = worker
            try:
                started = time.monotonic()
                await loop.run_in_executor(
                    worker.executor, worker.wait_ready, rt.config.startup_timeout
                )
            except OcrServeError as exc:
                rt.load_error = exc.message
                log.error("model %s: %s", rt.spec.name, exc.message)
                worker.kill()
                self.worker = None
                failures += 1
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))
                continue
            worker.status = "READY"
            rt.load_error = None
            failures = 0
            load_ms = (time.monotonic() - started) * 1000
            if rt.metrics is not None:
                rt.metrics.record_worker_load(
                    rt.spec.name, rt.spec.version, load_ms, worker_id=worker.id
                )
            log.info(
                "model %s: worker %s ready (pid %s) in %.0f ms, %d thread(s), on %s",
                rt.spec.name, worker.id, worker.pid, load_ms, rt.threads, worker.device,
            )  # fmt: skip
            try:
                await self._serve(worker)
            finally:
                worker.kill()
                self.worker = None

    async def _serve(self, worker: Worker) -> None:
        rt = self.runtime
        loop = asyncio.get_running_loop()
        while not self.retiring:
            cfg = rt.config
            batch = await rt.queue.take(cfg.batch_size, cfg.max_batch_delay / 1000.0)
            batch = [job for job in batch if not job.future.done()]
            if not batch:
                continue
            self.busy = True
            try:
                if not await self._run_batch(worker, batch, loop, cfg.response_timeout):
                    return
            finally:
                self.busy = False

    async def _run_batch(
        self, worker: Worker, batch: list[Job], loop: asyncio.AbstractEventLoop, timeout: int
    ) -> bool:
        """Send one batch; False when the worker must be replaced."""
        rt, name = self.runtime, self.runtime.spec.name
        started = time.monotonic()
        for job in batch:
            job.queue_s = started - job.enqueued
        if not worker.process.is_alive():
            _fail(batch, InternalServerError(f"Worker of model {name} died"))
            return False
        call = loop.run_in_executor(worker.executor, worker.roundtrip, [j.body for j in batch])
        try:
            results = await asyncio.wait_for(call, timeout)
        except asyncio.TimeoutError:
            _fail(batch, WorkerTimeout(f"Model {name} did not answer within {timeout} s"))
            log.error("model %s: worker %s timed out; replacing it", name, worker.id)
            return False
        except (EOFError, OSError, ValueError) as exc:
            _fail(batch, InternalServerError(f"Worker of model {name} died: {exc}"))
            log.error("model %s: worker %s died; replacing it", name, worker.id)
            return False
        except asyncio.CancelledError:
            _fail(batch, ServiceUnavailable(f"Model {name} was unloaded"))
            raise
        elapsed = time.monotonic() - started
        if rt.metrics is not None:
            rt.metrics.record_prediction(name, rt.spec.version, elapsed * 1000, len(batch))
        for job, res in zip(batch, results):
            job.handler_s = elapsed
            if job.future.done():
                continue
            if "ok" in res:
                job.future.set_result(res["ok"])
            else:
                job.future.set_exception(error_from_name(*res["error"]))
        return True


def _fail(batch: Iterable[Job], exc: OcrServeError) -> None:
    for job in batch:
        if not job.future.done():
            job.future.set_exception(exc)
