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
from collections.abc import Iterable
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
from ocrserve.server.jobs import Job, JobQueue
from ocrserve.server.process import FrameTimeout, Worker
from ocrserve.settings import InputLimits, ModelConfig

__all__ = [
    "PERMANENT_LOAD_ERRORS",
    "EngineMetrics",
    "SupervisedModel",
    "Supervisor",
]

log = logging.getLogger("ocrserve.server.engine")


class EngineMetrics(Protocol):
    """What the engine reports (implemented by `ocrserve.server.metrics.Metrics`)."""

    def record_worker_load(
        self, model: str, version: str, ms: float, *, worker_id: int | str | None = None
    ) -> None: ...

    def forget_worker(self, model: str, version: str, worker_id: int | str) -> None: ...

    def record_worker_memory(
        self, model: str, version: str, rss: int, *, worker_id: int | str
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
    limits: InputLimits
    log_dir: str | None
    metrics: EngineMetrics | None
    gpus: GpuPool | None
    #: ``worker_memory_limit`` in MB (0: none).
    memory_limit: int
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
        self._batches = 0
        #: Set when the worker is replaced for holding over ``worker_memory_limit``.
        self.recycling = False
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
            if self.recycling:  # replaced on purpose (worker_memory_limit): no back-off
                self.recycling = False
                continue
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
        """Send one batch; False when the worker must be replaced. ``timeout`` applies to each
        step: the batch's images, then each page of a document in it."""
        m, name = self.model, self.model.spec.name
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        for job in batch:
            job.queue_s = started - job.enqueued
        if not worker.process.is_alive():
            _fail(batch, InternalServerError(f"Worker of model {name} died"))
            return False
        self._batches += 1
        progress = _Progress(batch)
        for index, job in enumerate(batch):
            job.running = (worker, self._batches, index)

        def on_event(msg: dict[str, Any]) -> None:  # on the pipe's thread
            loop.call_soon_threadsafe(progress.event, msg)

        bodies, options = [j.body for j in batch], [j.options for j in batch]
        call = loop.run_in_executor(
            worker.executor, worker.exchange, bodies, options, self._batches, on_event, timeout
        )
        try:
            results = await call
        except FrameTimeout:
            requeue = progress.timed_out(timeout, name)
            m.queue.requeue(requeue)
            log.error("model %s: worker %s timed out; replacing it", name, worker.id)
            return False
        except (EOFError, OSError, ValueError) as exc:
            _fail(batch, InternalServerError(f"Worker of model {name} died: {exc}"))
            log.error("model %s: worker %s died; replacing it", name, worker.id)
            return False
        except asyncio.CancelledError:
            _fail(batch, ServiceUnavailable(f"Model {name} was unloaded"))
            raise
        finally:
            for job in batch:
                job.running = None
        elapsed = time.monotonic() - started
        rss = int(getattr(worker, "rss", 0))
        if m.metrics is not None:
            m.metrics.record_prediction(name, m.spec.version, elapsed * 1000, len(batch))
            if rss:
                m.metrics.record_worker_memory(name, m.spec.version, rss, worker_id=worker.id)
        for job, res in zip(batch, results):
            job.handler_s = elapsed
            if job.future.done():
                continue
            if "ok" in res:
                job.future.set_result(res["ok"])
            elif "pages_sent" in res:
                job.finish_document()
            elif "error" in res:
                job.future.set_exception(error_from_name(*res["error"]))
        limit = m.memory_limit * 1024 * 1024
        if limit and rss > limit:
            log.warning(
                "model %s: worker %s holds %.0f MB, over worker_memory_limit (%d MB): "
                "replacing it between requests", name, worker.id, rss / 2**20, m.memory_limit,
            )  # fmt: skip
            self.recycling = True
            return False
        return True


class _Progress:
    """What a worker reported of a batch so far (its event frames, on the event loop)."""

    def __init__(self, batch: list[Job]) -> None:
        self.batch = batch
        #: The document being read (its index), once the worker reached the documents.
        self.current: int | None = None
        self.reached_documents = False

    def event(self, msg: dict[str, Any]) -> None:
        kind, index = msg.get("event"), int(msg.get("index", -1))
        if not 0 <= index < len(self.batch):
            return
        job = self.batch[index]
        self.reached_documents = True
        if kind == "answer":
            answer = msg["answer"]
            if job.future.done():
                return
            if "ok" in answer:
                job.future.set_result(answer["ok"])
            else:
                job.future.set_exception(error_from_name(*answer["error"]))
        elif kind == "document":
            self.current = index
            job.opened(msg["pages"])
        elif kind == "page" and not job.future.done():
            job.add_page(msg["page"])

    def timed_out(self, timeout: int, name: str) -> list[Job]:
        """The worker stalled: the page it was reading gets a timeout error and its document
        goes on from the next page; documents it had not started are read again; anything
        else fails with `WorkerTimeout`. The jobs to put back in the queue."""
        requeue = []
        for index, job in enumerate(self.batch):
            if job.future.done():
                continue
            if index == self.current and job.page_numbers is not None:
                remaining = job.remaining_pages()
                if remaining:
                    job.add_page(_timed_out_page(remaining[0], timeout))
                if len(remaining) > 1:
                    job.options = {**job.options, "pages": page_ranges(remaining[1:])}
                    requeue.append(job)
                else:
                    job.finish_document()
            elif self.reached_documents and self.current is not None and index > self.current:
                requeue.append(job)  # a document not started yet
            else:
                job.future.set_exception(
                    WorkerTimeout(
                        f"Model {name} did not answer within {timeout} s. Raise the model's "
                        "responseTimeout (default_response_timeout in config.properties, "
                        "ocrserve start --default-response-timeout, or response_timeout when "
                        "registering it)."
                    )
                )
        return requeue


def _timed_out_page(number: int, timeout: int) -> dict[str, Any]:
    error = WorkerTimeout(
        f"Page {number} was not read within {timeout} s (the model's responseTimeout, which "
        "applies to each page); its worker was replaced and the next pages read."
    )
    return {
        "page": number, "width": 0, "height": 0, "error": error.to_json(),
        "time_ms": float(timeout * 1000), "done_at": round(time.time(), 4),
    }  # fmt: skip


def page_ranges(numbers: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5,9"`` (the ``pages`` option's form)."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ",".join(parts)


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
