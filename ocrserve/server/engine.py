"""The engine: models, their job queues, dynamic batching and worker-process lifecycle.

The HTTP layer only calls `Engine.infer`, which puts a job on the model's bounded queue and
awaits its result. One dispatcher task per worker pulls a batch (up to ``batch_size`` jobs,
waiting at most ``max_batch_delay`` for it to fill), sends it to its worker process and
resolves the jobs' futures. A worker that dies or overruns ``default_response_timeout`` fails
its in-flight jobs at once and is replaced, with a back-off when replacements keep failing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ocrserve.errors import (
    Conflict,
    InternalServerError,
    ModelNotFound,
    OcrServeError,
    ServiceUnavailable,
    WorkerTimeout,
    error_from_name,
)
from ocrserve.modelspec import ModelSpec
from ocrserve.server.worker import READY, STOP, worker_main
from ocrserve.settings import Settings
from ocrserve.store import LoadFailure

__all__ = ["Engine", "JobQueue"]

log = logging.getLogger(__name__)
_ctx = mp.get_context("spawn")


@dataclass
class Job:
    body: bytes
    future: asyncio.Future[dict[str, Any]]
    enqueued: float = field(default_factory=time.monotonic)


class JobQueue:
    """A bounded FIFO whose consumers take batches; taking never races with cancellation."""

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


class Worker:
    """A worker process and the pipe to it. Blocking calls run on its own thread."""

    def __init__(self, wid: int, spec: ModelSpec, threads: int, max_pixels: int) -> None:
        self.id = wid
        self.spec = spec
        parent, child = _ctx.Pipe(duplex=True)
        self.conn: Connection = parent
        self.process = _ctx.Process(
            target=worker_main,
            args=(child, spec, threads, max_pixels),
            name=f"ocrserve-worker-{spec.name}-{wid}",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.start_time = time.time()
        self.status = "LOADING"
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"pipe-{spec.name}-{wid}")

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def wait_ready(self, timeout: float) -> None:
        """Block until the worker has loaded its model; raise with the reason otherwise."""
        if not self.conn.poll(timeout):
            raise WorkerTimeout(f"worker did not load model {self.spec.name} within {timeout:g} s")
        try:
            msg = json.loads(self.conn.recv_bytes())
        except (EOFError, OSError) as exc:
            raise InternalServerError(f"worker exited while loading {self.spec.name}") from exc
        if msg.get("status") != READY:
            name, message = msg.get("error", ["InternalServerError", "load failed"])
            raise error_from_name(name, message)

    def roundtrip(self, bodies: list[bytes]) -> list[dict[str, Any]]:
        self.conn.send_bytes(json.dumps({"n": len(bodies)}).encode())
        for body in bodies:
            self.conn.send_bytes(body)
        return list(json.loads(self.conn.recv_bytes())["results"])

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to exit, kill it if it does not, and release the pipe and thread."""
        if self.process.is_alive():
            try:
                self.conn.send_bytes(STOP)
            except OSError:
                pass
            self.process.join(timeout)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()
        self.executor.shutdown(wait=False)
        self.status = "STOPPED"


class ModelRuntime:
    """One served model version: its queue, workers and state."""

    def __init__(self, spec: ModelSpec, settings: Settings, threads: int) -> None:
        self.spec = spec
        self.settings = settings
        self.threads = threads
        self.queue = JobQueue(settings.job_queue_size)
        self.batch_size = settings.batch_size
        self.max_batch_delay = settings.max_batch_delay
        self.min_workers = settings.default_workers_per_model
        self.workers: dict[int, Worker] = {}
        self.load_error: str | None = None
        self._next_id = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def ready_workers(self) -> int:
        return sum(1 for w in self.workers.values() if w.status == "READY")

    def start(self) -> None:
        for _ in range(self.min_workers):
            self._tasks.append(asyncio.create_task(self._supervise()))

    async def _supervise(self) -> None:
        """Keep one worker alive and serving; replace it when it dies or times out."""
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stopping:
            self._next_id += 1
            worker = Worker(self._next_id, self.spec, self.threads, self.settings.max_image_pixels)
            self.workers[worker.id] = worker
            try:
                await loop.run_in_executor(
                    worker.executor, worker.wait_ready, self.settings.default_startup_timeout
                )
            except OcrServeError as exc:
                self.load_error = exc.message
                log.error("model %s: %s", self.spec.name, exc.message)
                worker.kill()
                del self.workers[worker.id]
                failures += 1
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))
                continue
            worker.status = "READY"
            self.load_error = None
            failures = 0
            log.info("model %s: worker %s ready (pid %s)", self.spec.name, worker.id, worker.pid)
            try:
                await self._serve(worker)
            finally:
                worker.kill()
                self.workers.pop(worker.id, None)

    async def _serve(self, worker: Worker) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.settings.default_response_timeout
        while not self._stopping:
            batch = await self.queue.take(self.batch_size, self.max_batch_delay / 1000.0)
            batch = [job for job in batch if not job.future.done()]
            if not batch:
                continue
            if not worker.process.is_alive():
                self._fail(batch, InternalServerError(f"Worker of model {self.spec.name} died"))
                return
            call = loop.run_in_executor(worker.executor, worker.roundtrip, [j.body for j in batch])
            try:
                results = await asyncio.wait_for(call, timeout)
            except asyncio.TimeoutError:
                self._fail(
                    batch,
                    WorkerTimeout(f"Model {self.spec.name} did not answer within {timeout} s"),
                )
                log.error("model %s: worker %s timed out; replacing it", self.spec.name, worker.id)
                return
            except (EOFError, OSError, ValueError) as exc:
                self._fail(
                    batch, InternalServerError(f"Worker of model {self.spec.name} died: {exc}")
                )
                log.error("model %s: worker %s died; replacing it", self.spec.name, worker.id)
                return
            for job, res in zip(batch, results):
                if job.future.done():
                    continue
                if "ok" in res:
                    job.future.set_result(res["ok"])
                else:
                    job.future.set_exception(error_from_name(*res["error"]))

    @staticmethod
    def _fail(batch: Iterable[Job], exc: OcrServeError) -> None:
        for job in batch:
            if not job.future.done():
                job.future.set_exception(exc)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.queue.fail_all(ServiceUnavailable(f"Model {self.spec.name} is shutting down"))
        workers = list(self.workers.values())
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in workers))
        self.workers.clear()


def threads_per_worker(settings: Settings, total_workers: int) -> int:
    """Divide the machine's cores among all workers (at least one thread each)."""
    if settings.threads_per_worker:
        return settings.threads_per_worker
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, total_workers))


class Engine:
    """All served models, keyed by name then version."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.models: dict[str, dict[str, ModelRuntime]] = {}
        self.default_version: dict[str, str] = {}
        #: Configured models whose archive could not be loaded: name -> failure.
        self.failures: dict[str, LoadFailure] = {}

    async def start(self, specs: Iterable[ModelSpec], failures: Iterable[LoadFailure] = ()) -> None:
        self.failures.update((f.name, f) for f in failures)
        specs = list(specs)
        threads = threads_per_worker(
            self.settings, len(specs) * self.settings.default_workers_per_model
        )
        for spec in specs:
            try:
                self.register(spec, threads)
            except Conflict as exc:
                log.error("not loading %s: %s", spec.url, exc.message)

    def register(self, spec: ModelSpec, threads: int) -> ModelRuntime:
        """Add a model version and start its workers; 409 if that version is registered."""
        if spec.version in self.models.get(spec.name, {}):
            raise Conflict(
                f"Model version {spec.version} is already registered for model {spec.name}"
            )
        runtime = ModelRuntime(spec, self.settings, threads)
        self.models.setdefault(spec.name, {})[spec.version] = runtime
        self.default_version.setdefault(spec.name, spec.version)
        self.failures.pop(spec.name, None)
        runtime.start()
        return runtime

    def get(self, name: str, version: str | None = None) -> ModelRuntime:
        versions = self.models.get(name)
        if not versions:
            if name in self.failures:
                raise ServiceUnavailable(
                    f"Model {name} could not be loaded: {self.failures[name].reason}"
                )
            raise ModelNotFound(f"Model not found: {name}")
        if version is None:
            return versions[self.default_version[name]]
        if version not in versions:
            raise ModelNotFound(f"Model version: {version} does not exist for model: {name}")
        return versions[version]

    def healthy(self) -> bool:
        """True when every configured model has at least one live worker."""
        return not self.failures and all(
            rt.ready_workers > 0 for versions in self.models.values() for rt in versions.values()
        )

    async def infer(self, name: str, version: str | None, body: bytes) -> dict[str, Any]:
        runtime = self.get(name, version)
        if runtime.ready_workers == 0 and not runtime.workers:
            raise ServiceUnavailable(
                f'Model "{name}" has no worker to serve inference request. '
                "Please use scale workers API to add workers."
            )
        job = Job(body, asyncio.get_running_loop().create_future())
        if not runtime.queue.put(job):
            raise ServiceUnavailable(
                f'Model "{name}" has no worker to serve inference request: its job queue is '
                f"full (job_queue_size={self.settings.job_queue_size})."
            )
        return await job.future

    async def shutdown(self) -> None:
        await asyncio.gather(
            *(rt.stop() for versions in self.models.values() for rt in versions.values())
        )
