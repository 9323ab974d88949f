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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ocrserve.archives.spec import ModelSpec
from ocrserve.errors import (
    ConfigError,
    InternalServerError,
    ModelLoadError,
    OcrServeError,
    ServiceUnavailable,
    WorkerTimeout,
    error_from_name,
)
from ocrserve.server.devices import GpuPool
from ocrserve.server.process import Worker
from ocrserve.settings import InputLimits, ModelConfig

__all__ = [
    "PERMANENT_LOAD_ERRORS",
    "EngineMetrics",
    "Job",
    "JobQueue",
    "SupervisedModel",
    "Supervisor",
]

log = logging.getLogger("ocrserve.server.engine")


@dataclass
class Job:
    """One inference request waiting for (or being served by) a worker."""

    body: bytes
    future: asyncio.Future[dict[str, Any]]
    #: The request's validated options (`ocrserve.options`); empty for none.
    options: dict[str, Any] = field(default_factory=dict)
    enqueued: float = field(default_factory=time.monotonic)
    #: Set when a worker takes the job: seconds it waited, and the worker's batch time.
    queue_s: float = 0.0
    handler_s: float = 0.0


class JobQueue:
    """A bounded FIFO whose consumers (the supervisors) take batches.

    A consumer cancelled inside `take` puts the jobs it had taken back at the front, in order,
    and passes its wake-up on: a job leaves the queue only in a batch that is handed out.
    """

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
        self._wake(1)
        return True

    def requeue(self, jobs: Sequence[Job]) -> None:
        """Put taken jobs back at the front, in their order (unanswered ones only)."""
        pending = [job for job in jobs if not job.future.done()]
        self._items.extendleft(reversed(pending))
        self._wake(len(pending))

    def _wake(self, count: int) -> None:
        while count > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    async def _wait(self, timeout: float | None, until: asyncio.Future[None] | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            waits = {waiter} if until is None else {waiter, until}
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and self._items:
                self._wake(1)  # woken, then cancelled: another consumer takes the job
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            elif until is not None and until.done() and self._items:
                self._wake(1)  # woken, but leaving: pass the wake-up on

    async def take(
        self,
        max_items: int,
        delay: float,
        until: asyncio.Future[None] | None = None,
        batch: list[Job] | None = None,
    ) -> list[Job]:
        """Wait for a first job, then up to ``delay`` seconds for the batch to fill.

        Once ``until`` is done the batch is returned as it is: empty while waiting for a first
        job, partial while filling. Jobs are taken into ``batch`` (a new list if None), so the
        caller sees what it holds while it waits.
        """
        batch = [] if batch is None else batch
        try:
            while not self._items:
                if until is not None and until.done():
                    return batch
                await self._wait(None, until)
            batch.append(self._items.popleft())
            deadline = time.monotonic() + delay
            while len(batch) < max_items:
                if self._items:
                    batch.append(self._items.popleft())
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (until is not None and until.done()):
                    break
                await self._wait(remaining, until)
        except BaseException:
            self.requeue(batch)
            batch.clear()
            raise
        if self._items:  # leftovers: wake another consumer
            self._wake(1)
        return batch

    def fail_all(self, exc: OcrServeError) -> None:
        """Fail every queued job with ``exc``."""
        while self._items:
            job = self._items.popleft()
            if not job.future.done():
                job.future.set_exception(exc)


class EngineMetrics(Protocol):
    """What the engine reports (implemented by `ocrserve.server.metrics.Metrics`)."""

    def record_worker_load(
        self, model: str, version: str, ms: float, *, worker_id: int | str | None = None
    ) -> None: ...

    def forget_worker(self, model: str, version: str, worker_id: int | str) -> None: ...

    def record_prediction(
        self, model: str, version: str | None, ms: float, batch_size: int
    ) -> None: ...


class SupervisedModel(Protocol):
    """What a supervisor reads and updates of its model version (`ModelRuntime` in the engine)."""

    spec: ModelSpec
    config: ModelConfig
    queue: JobQueue
    threads: int
    limits: InputLimits
    log_dir: str | None
    metrics: EngineMetrics | None
    gpus: GpuPool | None
    load_error: str | None
    next_worker_id: int


#: Load errors that another try cannot fix: the archive, its config or its weights are wrong,
#: or a module the model needs is missing. Anything else (a crash, a timeout) is retried.
PERMANENT_LOAD_ERRORS = (ModelLoadError, ConfigError)
#: A worker that dies idle sooner than this after loading counts as a failed start (back-off).
MIN_HEALTHY_S = 5.0


class Supervisor:
    """Keeps one worker process alive and feeds it batches.

    Spawning and killing processes run on threads, never on the event loop. The worker's process
    sentinel is watched while it waits for jobs, so a worker that dies idle is replaced at once
    (and is not counted as ready meanwhile). A load error that retrying cannot fix ends the
    supervisor with `failed` set; other failures are retried with a back-off.
    """

    def __init__(self, model: SupervisedModel) -> None:
        self.model = model
        self.worker: Worker | None = None
        self.busy = False
        self.retiring = False
        #: Set when the model cannot load for good (the reason is in ``model.load_error``).
        self.failed = False
        #: The jobs taken for the batch being filled.
        self.holding: list[Job] = []
        self._serving = False
        self._retired: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._run())

    def retire(self) -> None:
        """Stop after the current batch; a batch being filled is sent as it is, at once.

        A supervisor that is starting its worker (or waiting to retry) holds no job and stops at
        once.
        """
        self.retiring = True
        if not self._retired.done():
            self._retired.set_result(None)
        if not self._serving:
            self.task.cancel()

    async def _run(self) -> None:
        failures = 0
        while not self.retiring:
            worker = await self._spawn()
            self.worker = worker
            lived = 0.0
            try:
                loaded = await self._load(worker)
                if loaded:
                    ready = time.monotonic()
                    await self._serve(worker)
                    lived = time.monotonic() - ready
            finally:
                self.worker = None
                await _dispose(worker, self.model)
            if self.failed or self.retiring:
                return
            if loaded and lived >= MIN_HEALTHY_S:
                failures = 0
                continue
            failures += 1  # a worker that died soon after loading is replaced at once once
            if not loaded or failures > 1:
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))

    async def _spawn(self) -> Worker:
        """Start a worker process on a thread; a cancelled start still ends in a killed worker."""
        m = self.model
        m.next_worker_id += 1
        gpu = m.gpus.take() if m.gpus is not None and m.config.device_type != "cpu" else None
        args = (m.next_worker_id, m.spec, m.threads, m.limits, m.log_dir)
        started = asyncio.get_running_loop().run_in_executor(None, lambda: Worker(*args, gpu=gpu))
        try:
            return await asyncio.shield(started)
        except asyncio.CancelledError:
            loop = asyncio.get_running_loop()
            started.add_done_callback(
                lambda done: (
                    None
                    if done.cancelled() or done.exception() is not None
                    else loop.run_in_executor(None, done.result().kill)
                )
            )
            raise

    async def _load(self, worker: Worker) -> bool:
        """Wait for the worker to load its model; False when it failed (``failed`` if for good)."""
        m = self.model
        started = time.monotonic()
        try:
            await asyncio.get_running_loop().run_in_executor(
                worker.executor, worker.wait_ready, m.config.startup_timeout
            )
        except OcrServeError as exc:
            m.load_error = exc.message
            self.failed = isinstance(exc, PERMANENT_LOAD_ERRORS)
            log.error(
                "model %s: %s%s", m.spec.name, exc.message,
                " (not retried: the model cannot load as it is)" if self.failed else "",
            )  # fmt: skip
            return False
        worker.status = "READY"
        m.load_error = None
        load_ms = (time.monotonic() - started) * 1000
        if m.metrics is not None:
            m.metrics.record_worker_load(m.spec.name, m.spec.version, load_ms, worker_id=worker.id)
        log.info(
            "model %s: worker %s ready (pid %s) in %.0f ms, %d thread(s), on %s",
            m.spec.name, worker.id, worker.pid, load_ms, m.threads, worker.device,
        )  # fmt: skip
        return True

    async def _serve(self, worker: Worker) -> None:
        """Take and run batches until retired or until the worker dies."""
        m = self.model
        loop = asyncio.get_running_loop()
        died: asyncio.Future[None] = loop.create_future()
        sentinel = worker.process.sentinel

        def on_exit() -> None:
            worker.status = "STOPPED"
            if not died.done():
                died.set_result(None)

        loop.add_reader(sentinel, on_exit)
        self._serving = True
        try:
            while not self.retiring:
                cfg = m.config
                delay = cfg.max_batch_delay / 1000.0
                self.holding = []
                take = asyncio.ensure_future(
                    m.queue.take(cfg.batch_size, delay, self._retired, self.holding)
                )
                try:
                    waits: set[asyncio.Future[Any]] = {take, died}
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError:
                    await _cancel_take(take, m.queue)
                    raise
                if died.done():
                    await _cancel_take(take, m.queue)
                    log.error("model %s: worker %s exited; replacing it", m.spec.name, worker.id)
                    return
                batch = [job for job in take.result() if not job.future.done()]
                self.holding = []
                if not batch:
                    continue
                self.busy = True
                try:
                    if not await self._run_batch(worker, batch, cfg.response_timeout):
                        return
                finally:
                    self.busy = False
        finally:
            self._serving = False
            self.holding = []
            loop.remove_reader(sentinel)

    async def _run_batch(self, worker: Worker, batch: list[Job], timeout: int) -> bool:
        """Send one batch; False when the worker must be replaced."""
        m, name = self.model, self.model.spec.name
        started = time.monotonic()
        for job in batch:
            job.queue_s = started - job.enqueued
        if not worker.process.is_alive():
            _fail(batch, InternalServerError(f"Worker of model {name} died"))
            return False
        call = asyncio.get_running_loop().run_in_executor(
            worker.executor,
            worker.roundtrip,
            [j.body for j in batch],
            [j.options for j in batch],
        )
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
        if m.metrics is not None:
            m.metrics.record_prediction(name, m.spec.version, elapsed * 1000, len(batch))
        for job, res in zip(batch, results):
            job.handler_s = elapsed
            if job.future.done():
                continue
            if "ok" in res:
                job.future.set_result(res["ok"])
            else:
                job.future.set_exception(error_from_name(*res["error"]))
        return True


async def _cancel_take(take: asyncio.Future[list[Job]], queue: JobQueue) -> None:
    """Cancel a pending `JobQueue.take` (it requeues what it took); requeue a finished one's."""
    if not take.done():
        take.cancel()
        await asyncio.wait({take})
    if not take.cancelled() and take.exception() is None:
        queue.requeue(take.result())


async def _dispose(worker: Worker, model: SupervisedModel) -> None:
    """Kill the worker on a thread (even when this task is cancelled meanwhile)."""
    killed = asyncio.get_running_loop().run_in_executor(None, worker.kill)
    try:
        await asyncio.shield(killed)
    finally:
        if model.metrics is not None:
            model.metrics.forget_worker(model.spec.name, model.spec.version, worker.id)


def _fail(batch: Iterable[Job], exc: OcrServeError) -> None:
    for job in batch:
        if not job.future.done():
            job.future.set_exception(exc)
