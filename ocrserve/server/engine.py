"""The engine: models and versions, their job queues, dynamic batching and worker processes.

The HTTP layer only calls `Engine.infer`, which puts a job on the model's bounded queue and
awaits its result. One supervisor task per worker keeps its process alive and, once it is
ready, takes batches (up to ``batch_size`` jobs, waiting at most ``max_batch_delay`` for a
partial batch to fill) and sends them over the pipe. A worker that dies or overruns its
response timeout fails its in-flight jobs at once and is replaced, with a back-off when
replacements keep failing. Scaling adds supervisors or retires them between batches.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ocrserve.errors import (
    BadRequest,
    Conflict,
    InternalServerError,
    ModelNotFound,
    OcrServeError,
    ServiceUnavailable,
    WorkerTimeout,
    error_from_name,
)
from ocrserve.modelspec import ModelSpec
from ocrserve.server.jobs import Job, JobQueue
from ocrserve.server.process import Worker
from ocrserve.settings import Settings
from ocrserve.store import LoadFailure

__all__ = [
    "Engine",
    "EngineMetrics",
    "GpuPool",
    "ModelConfig",
    "ModelVersionNotFound",
    "threads_per_worker",
    "visible_gpus",
]

log = logging.getLogger(__name__)


class ModelVersionNotFound(ModelNotFound):
    """Raised for a version a registered model does not have (TorchServe's own type)."""

    type = "ModelVersionNotFoundException"


class InvalidModelVersion(OcrServeError):
    """Raised when removing the default version while other versions exist."""

    status = 403
    type = "InvalidModelVersionException"


class EngineMetrics(Protocol):
    """What the engine reports (implemented by `ocrserve.server.metrics.Metrics`)."""

    def record_worker_load(
        self, model: str, version: str, ms: float, *, worker_id: int | str | None = None
    ) -> None: ...

    def record_prediction(
        self, model: str, version: str | None, ms: float, batch_size: int
    ) -> None: ...


@dataclass(frozen=True)
class ModelConfig:
    """Per-model-version serving settings (TorchServe's describe fields)."""

    min_workers: int = 1
    max_workers: int = 1
    batch_size: int = 1
    max_batch_delay: int = 100
    response_timeout: int = 120
    startup_timeout: int = 120
    loaded_at_startup: bool = False
    #: "cpu", "gpu", or "" for the server's choice (a GPU when `number_of_gpu` gives any).
    device_type: str = ""

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ModelConfig:
        base = cls(
            min_workers=settings.default_workers_per_model,
            max_workers=settings.default_workers_per_model,
            batch_size=settings.batch_size,
            max_batch_delay=settings.max_batch_delay,
            response_timeout=settings.default_response_timeout,
            startup_timeout=settings.default_startup_timeout,
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


class Supervisor:
    """Keeps one worker process alive and feeds it batches."""

    def __init__(self, runtime: ModelRuntime) -> None:
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
        rt.batches.append(len(batch))
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


class ModelRuntime:
    """One served model version: its queue, supervisors and state."""

    def __init__(
        self,
        spec: ModelSpec,
        config: ModelConfig,
        settings: Settings,
        metrics: EngineMetrics | None = None,
        gpus: GpuPool | None = None,
    ) -> None:
        self.spec = spec
        self.gpus = gpus
        self.config = config
        self.max_pixels = settings.max_image_pixels
        self.log_dir = os.environ.get("LOG_LOCATION") or settings.log_location
        self.queue = JobQueue(settings.job_queue_size)
        self.threads = threads_per_worker(settings)
        self.metrics = metrics
        self.supervisors: list[Supervisor] = []
        self.load_error: str | None = None
        #: TorchServe numbers workers from 9000; the same id is in describe and in metrics.
        self.next_worker_id = 8999
        #: Sizes of the batches run so far (the last 1000), for describe and tests.
        self.batches: list[int] = []

    @property
    def workers(self) -> list[Worker]:
        return [s.worker for s in self.supervisors if s.worker is not None]

    @property
    def ready_workers(self) -> int:
        return sum(1 for w in self.workers if w.status == "READY")

    def scale(self, count: int) -> None:
        """Run ``count`` workers: start supervisors or retire the idle ones first."""
        live = [s for s in self.supervisors if not s.retiring]
        for _ in range(count - len(live)):
            self.supervisors.append(Supervisor(self))
        surplus = len(live) - count
        for sup in sorted(live, key=lambda s: s.busy)[: max(0, surplus)]:
            sup.retire()
        self.supervisors = [s for s in self.supervisors if not s.task.done()]

    async def wait_ready(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` workers are ready (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while self.ready_workers < count or (count == 0 and self.workers):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def stop(self) -> None:
        for sup in self.supervisors:
            sup.retiring = True
            sup.task.cancel()
        await asyncio.gather(*(s.task for s in self.supervisors), return_exceptions=True)
        self.queue.fail_all(ServiceUnavailable(f"Model {self.spec.name} is shutting down"))
        self.supervisors.clear()

    def describe(self, default_version: str) -> dict[str, Any]:
        """TorchServe's describe JSON for this version."""
        cfg = self.config
        workers = [
            {
                "id": str(w.id),
                "startTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(w.start_time)),
                "status": w.status,
                "memoryUsage": w.memory_usage(),
                "pid": w.pid or -1,
                "gpu": w.device.startswith("cuda"),
                "gpuUsage": f"gpuId::{w.device.partition(':')[2] or 0}"
                if w.device.startswith("cuda")
                else "N/A",
            }
            for w in self.workers
        ]
        info: dict[str, Any] = {
            "modelName": self.spec.name,
            "modelVersion": self.spec.version,
            "modelUrl": self.spec.url,
            "runtime": "python",
            "minWorkers": cfg.min_workers,
            "maxWorkers": cfg.max_workers,
            "batchSize": cfg.batch_size,
            "maxBatchDelay": cfg.max_batch_delay,
            "responseTimeout": cfg.response_timeout,
            "startupTimeout": cfg.startup_timeout,
            "deviceType": "gpu" if any(w["gpu"] for w in workers) else "cpu",
            "cpuThreads": self.threads,
            "loadedAtStartup": cfg.loaded_at_startup,
            "isDefault": self.spec.version == default_version,
            "task": self.spec.task,
            "status": "Healthy" if self.ready_workers or not cfg.min_workers else "Unhealthy",
            "workers": workers,
            "jobQueueStatus": {
                "remainingCapacity": self.queue.maxsize - len(self.queue),
                "pendingRequests": len(self.queue),
            },
        }
        if self.load_error:
            info["loadError"] = self.load_error
        return info


def cpu_count() -> int:
    """Cores this process may use (affinity/cgroup aware where the OS says so)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    try:  # cgroup v2 CPU quota, as containers set it
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def visible_gpus() -> int:
    """NVIDIA GPUs this process may use, found without loading CUDA.

    ``CUDA_VISIBLE_DEVICES`` when set (CUDA stops at its first negative entry), else the
    driver's list in ``/proc/driver/nvidia/gpus``; 0 when neither says any.
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        count = 0
        for entry in env.split(","):
            if not entry.strip() or entry.strip().startswith("-"):
                break
            count += 1
        return count
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


class GpuPool:
    """GPU ids for new workers, round robin over all workers of all models (as TorchServe)."""

    def __init__(self, count: int) -> None:
        self.count = max(0, count)
        self._next = 0

    def take(self) -> int | None:
        """The GPU for the next worker, or None when there is none."""
        if self.count == 0:
            return None
        gpu = self._next % self.count
        self._next += 1
        return gpu


def threads_per_worker(settings: Settings) -> int:
    """Threads for each worker: ``threads_per_worker``, else every core of the machine.

    Workers do not divide the cores: their OpenMP and ONNX Runtime threads sleep instead of
    spinning while they wait, so several busy workers share the cores at a cost of a few
    percent, while a lone busy worker uses them all. Measured on 2 cores with DBNet-r18:
    2 workers x 2 threads gave 2.21 req/s at concurrency 4 (2 x 1: 2.33) and 598 ms at
    concurrency 1 (2 x 1: 859 ms).
    """
    return settings.threads_per_worker or cpu_count()


class Engine:
    """All served models, keyed by name then version."""

    def __init__(self, settings: Settings, metrics: EngineMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        gpus = settings.number_of_gpu if settings.number_of_gpu >= 0 else visible_gpus()
        self.gpus = GpuPool(gpus)
        self.models: dict[str, dict[str, ModelRuntime]] = {}
        self.default_version: dict[str, str] = {}
        #: Configured models whose archive could not be loaded: name -> failure.
        self.failures: dict[str, LoadFailure] = {}

    async def start(
        self,
        specs: Iterable[ModelSpec],
        failures: Iterable[LoadFailure] = (),
        configs: dict[tuple[str, str], ModelConfig] | None = None,
    ) -> None:
        """Register the startup models and start their workers."""
        self.failures.update((f.name, f) for f in failures)
        configs = configs or {}
        default = ModelConfig.from_settings(self.settings, loaded_at_startup=True)
        for spec in specs:
            try:
                self.register(spec, configs.get((spec.name, spec.version), default))
            except Conflict as exc:
                log.error("not loading %s: %s", spec.url, exc.message)
            except OcrServeError as exc:
                log.error("not loading %s: %s", spec.url, exc.message)
                self.failures[spec.name] = LoadFailure(spec.name, spec.url, exc.message)
        runtimes = [rt for versions in self.models.values() for rt in versions.values()]
        log.info(
            "%d worker(s) on %d core(s) (threads per worker: %s); %d GPU(s) for PyTorch models",
            sum(rt.config.min_workers for rt in runtimes), cpu_count(),
            ", ".join(f"{rt.spec.name} {rt.threads}" for rt in runtimes) or "-", self.gpus.count,
        )  # fmt: skip
        for versions in self.models.values():
            for rt in versions.values():
                rt.scale(rt.config.min_workers)

    def register(
        self, spec: ModelSpec, config: ModelConfig, *, start: bool = False
    ) -> ModelRuntime:
        """Add a model version (409 if registered); ``start`` launches its workers."""
        if config.max_workers > self.settings.max_workers_per_model:
            raise BadRequest(
                f"At most {self.settings.max_workers_per_model} workers per model "
                "(max_workers_per_model)."
            )
        if spec.version in self.models.get(spec.name, {}):
            raise Conflict(
                f"Model version {spec.version} is already registered for model {spec.name}"
            )
        runtime = ModelRuntime(spec, config, self.settings, self.metrics, self.gpus)
        self.models.setdefault(spec.name, {})[spec.version] = runtime
        self.default_version.setdefault(spec.name, spec.version)
        self.failures.pop(spec.name, None)
        if start:
            runtime.scale(config.min_workers)
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
            raise ModelVersionNotFound(f"Model version: {version} does not exist for model: {name}")
        return versions[version]

    def versions(self, name: str) -> list[ModelRuntime]:
        self.get(name)
        return list(self.models[name].values())

    def healthy(self) -> bool:
        """True when every configured model version with workers has a live one."""
        return not self.failures and all(
            rt.ready_workers > 0 or rt.config.min_workers == 0
            for versions in self.models.values()
            for rt in versions.values()
        )

    def set_default(self, name: str, version: str) -> None:
        self.get(name)
        if version not in self.models[name]:
            raise ModelVersionNotFound(f"Model version {version} does not exist for model {name}")
        self.default_version[name] = version

    async def unregister(self, name: str, version: str | None = None) -> None:
        """Remove a version (the default one only when it is the last)."""
        runtime = self.get(name, version)
        versions = self.models[name]
        if runtime.spec.version == self.default_version[name] and len(versions) > 1:
            raise InvalidModelVersion(f"Cannot remove default version for model {name}")
        del versions[runtime.spec.version]
        if not versions:
            del self.models[name]
            del self.default_version[name]
        await runtime.stop()

    def scale(
        self, name: str, version: str | None, min_workers: int, max_workers: int
    ) -> ModelRuntime:
        if min_workers < 0 or max_workers < 0:
            raise BadRequest("min_worker and max_worker must not be negative.")
        if max_workers < min_workers:
            raise BadRequest("max_worker cannot be less than min_worker.")
        cap = self.settings.max_workers_per_model
        if max_workers > cap:
            raise BadRequest(f"At most {cap} workers per model (max_workers_per_model).")
        runtime = self.get(name, version)
        runtime.config = replace(runtime.config, min_workers=min_workers, max_workers=max_workers)
        runtime.scale(min_workers)
        return runtime

    async def infer(self, name: str, version: str | None, body: bytes) -> Job:
        """Queue one request and wait for it; the finished job carries result and timings."""
        runtime = self.get(name, version)
        if not runtime.supervisors:
            raise ServiceUnavailable(
                f'Model "{name}" has no worker to serve inference request. '
                "Please use scale workers API to add workers."
            )
        if runtime.ready_workers == 0 and runtime.load_error:
            raise ServiceUnavailable(
                f'Model "{name}" has no worker to serve inference request: it failed to load '
                f"({runtime.load_error})"
            )
        job = Job(body, asyncio.get_running_loop().create_future())
        if not runtime.queue.put(job):
            raise ServiceUnavailable(
                f'Model "{name}" has no worker to serve inference request: its job queue is '
                f"full (job_queue_size={self.settings.job_queue_size})."
            )
        await job.future
        return job

    def fail_unservable(self) -> None:
        """Fail the queued jobs of models with no ready worker (used when stopping)."""
        for versions in self.models.values():
            for rt in versions.values():
                if rt.ready_workers == 0:
                    rt.queue.fail_all(ServiceUnavailable(f"Model {rt.spec.name} is shutting down"))

    async def shutdown(self) -> None:
        await asyncio.gather(
            *(rt.stop() for versions in self.models.values() for rt in versions.values())
        )
