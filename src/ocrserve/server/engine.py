"""The engine: models and their versions, each with a job queue and its workers' supervisors.

The HTTP layer only calls `Engine.infer`, which puts a job on the model's bounded queue and
awaits its result; one `Supervisor` per worker (`ocrserve.server.supervisor`) takes batches
from that queue. Scaling adds supervisors or retires them between batches.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Protocol

from ocrserve.archives.spec import ModelSpec
from ocrserve.archives.store import LoadFailure
from ocrserve.errors import (
    BadRequest,
    Conflict,
    InvalidModelVersion,
    ModelNotFound,
    ModelVersionNotFound,
    OcrServeError,
    ServiceUnavailable,
)
from ocrserve.server.devices import GpuPool, cpu_count, threads_per_worker, visible_gpus
from ocrserve.server.jobs import Job, JobQueue
from ocrserve.server.process import Worker
from ocrserve.server.supervisor import EngineMetrics, Supervisor
from ocrserve.settings import ModelConfig, Settings

__all__ = ["Engine", "ModelRuntime", "ServedModel"]

log = logging.getLogger(__name__)


class ServedModel(Protocol):
    """One served model version as the HTTP layer and `Engine` see it: `ModelRuntime` here,
    `ocrserve.server.ray_engine.RayModel` for Ray Serve."""

    spec: ModelSpec
    config: ModelConfig
    load_error: str | None
    #: Threads each worker (replica) runs the model with.
    threads: int

    @property
    def ready_workers(self) -> int: ...

    def scale(self, count: int) -> None: ...

    async def submit(self, body: bytes, options: dict[str, Any]) -> Job: ...

    async def wait_ready(self, count: int, timeout: float) -> bool: ...

    def fail_queued(self, exc: ServiceUnavailable) -> None: ...

    async def stop(self) -> None: ...

    def describe(self, default_version: str) -> dict[str, Any]: ...


def queue_full(name: str, size: int) -> ServiceUnavailable:
    """TorchServe's 503 for a model whose job queue (``job_queue_size``) is full."""
    return ServiceUnavailable(
        f'Model "{name}" has no worker to serve inference request: its job queue is full '
        f"(job_queue_size={size})."
    )


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
        self.limits = settings.input_limits()
        self.memory_limit = settings.worker_memory_limit
        self.log_dir: str | None = os.environ.get("LOG_LOCATION") or settings.log_location
        self.queue = JobQueue(settings.job_queue_size)
        self.threads = threads_per_worker(settings)
        self.metrics = metrics
        #: The supervisors that keep this version's workers (retiring ones are not here).
        self.supervisors: list[Supervisor] = []
        self._retiring: set[Supervisor] = set()
        self.load_error: str | None = None
        #: True once a worker failed to load for a reason retrying cannot fix (until rescaled).
        self.load_failed = False
        #: TorchServe numbers workers from 9000; the same id is in describe and in metrics.
        self.next_worker_id = 8999

    @property
    def workers(self) -> list[Worker]:
        return [s.worker for s in self.supervisors if s.worker is not None]

    @property
    def ready_workers(self) -> int:
        return sum(1 for w in self.workers if w.status == "READY")

    def scale(self, count: int) -> None:
        """Run ``count`` workers: start supervisors, or retire some (`_retire_order`).

        With no supervisor left, queued requests are answered 503 at once (and so are the ones a
        retiring supervisor puts back), and new ones are refused.
        """
        for _ in range(count - len(self.supervisors)):
            self.load_failed = False  # scaling up is trying again
            sup = Supervisor(self)
            sup.task.add_done_callback(functools.partial(self._ended, sup))
            self.supervisors.append(sup)
        surplus = len(self.supervisors) - count
        for sup in sorted(self.supervisors, key=_retire_order)[: max(0, surplus)]:
            self.supervisors.remove(sup)
            self._retiring.add(sup)
            sup.retire()
        self._fail_if_unserved()

    def _ended(self, sup: Supervisor, task: asyncio.Task[None]) -> None:
        """A supervisor's task ended: retired, stopped, or its model cannot load for good."""
        self._retiring.discard(sup)
        if sup in self.supervisors:
            self.supervisors.remove(sup)
        if sup.failed:
            self.load_failed = True
        self._fail_if_unserved()

    def _fail_if_unserved(self) -> None:
        if not self.supervisors:
            self.queue.fail_all(self.unserved())

    def unserved(self) -> ServiceUnavailable:
        """The answer while no supervisor will take this version's jobs."""
        name = self.spec.name
        if self.load_error:
            return ServiceUnavailable(
                f'Model "{name}" has no worker to serve inference request: it failed to load '
                f"({self.load_error})"
            )
        return ServiceUnavailable(
            f'Model "{name}" has no worker to serve inference request. '
            "Please use scale workers API to add workers."
        )

    def enqueue(self, body: bytes, options: dict[str, Any], *, follow: bool = False) -> Job:
        """Queue one request (with its validated options) and return its job at once; with
        ``follow`` a document's pages also go to ``job.events`` as they are read."""
        if not self.supervisors or (self.ready_workers == 0 and self.load_error):
            raise self.unserved()
        events: asyncio.Queue[tuple[str, Any]] | None = asyncio.Queue() if follow else None
        job = Job(body, asyncio.get_running_loop().create_future(), options=options, events=events)
        if not self.queue.put(job):
            raise queue_full(self.spec.name, self.queue.maxsize)
        return job

    async def submit(self, body: bytes, options: dict[str, Any]) -> Job:
        """Queue one request (with its validated options) and wait for it; the finished job
        carries result and timings."""
        job = self.enqueue(body, options)
        await job.future
        return job

    def fail_queued(self, exc: ServiceUnavailable) -> None:
        """Fail the queued jobs when no worker is ready to take them (used when stopping)."""
        if self.ready_workers == 0:
            self.queue.fail_all(exc)

    async def wait_ready(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` workers are ready (True), or ``timeout`` passes or every worker
        failed for good (False)."""
        deadline = time.monotonic() + timeout
        while self.ready_workers < count or (count == 0 and self.workers):
            if time.monotonic() > deadline or (count and not self.supervisors):
                return False
            await asyncio.sleep(0.05)
        return True

    async def stop(self) -> None:
        """Stop every supervisor (in-flight batches answer 503), then fail what is queued."""
        every = [*self.supervisors, *self._retiring]
        self.supervisors.clear()
        for sup in every:
            sup.retiring = True
            sup.task.cancel()
        await asyncio.gather(*(s.task for s in every), return_exceptions=True)
        self.queue.fail_all(ServiceUnavailable(f"Model {self.spec.name} is shutting down"))

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
            "weights": self.spec.weights,
            "pinnedOptions": self.spec.options,
            "status": "Healthy" if self.ready_workers or not cfg.min_workers else "Unhealthy",
            "workers": workers,
            "jobQueueStatus": {
                "remainingCapacity": self.queue.maxsize - len(self.queue),
                "pendingRequests": len(self.queue),
            },
        }
        if self.spec.quantization:
            info["quantization"] = self.spec.quantization
        if self.load_error:
            info["loadError"] = self.load_error
        if self.load_failed:
            info["loadFailed"] = True
        return info


def _retire_order(sup: Supervisor) -> tuple[int, int]:
    """Which supervisors a scale-down retires first: those still starting their worker, then
    those filling a batch (it is sent at once: its requests do not wait for the delay), then
    idle ones; busy ones last (they stop after their batch)."""
    if sup.busy:
        return (3, 0)
    if sup.worker is None or sup.worker.status != "READY":
        return (0, 0)
    return (1, 0) if sup.holding else (2, 0)


class Engine:
    """All served models, keyed by name then version."""

    def __init__(self, settings: Settings, metrics: EngineMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        gpus = settings.number_of_gpu if settings.number_of_gpu >= 0 else visible_gpus()
        self.gpus = GpuPool(gpus)
        self.models: dict[str, dict[str, ServedModel]] = {}
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

    def register(self, spec: ModelSpec, config: ModelConfig, *, start: bool = False) -> ServedModel:
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
        runtime = self.new_model(spec, config)
        self.models.setdefault(spec.name, {})[spec.version] = runtime
        self.default_version.setdefault(spec.name, spec.version)
        self.failures.pop(spec.name, None)
        if start:
            runtime.scale(config.min_workers)
        return runtime

    def new_model(self, spec: ModelSpec, config: ModelConfig) -> ServedModel:
        """The runtime of a newly registered version (what another engine overrides)."""
        return ModelRuntime(spec, config, self.settings, self.metrics, self.gpus)

    def get(self, name: str, version: str | None = None) -> ServedModel:
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

    def versions(self, name: str) -> list[ServedModel]:
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

    async def unregister(self, name: str, version: str | None = None) -> ServedModel:
        """Remove a version (the default one only when it is the last); its workers stop."""
        runtime = self.get(name, version)
        versions = self.models[name]
        if runtime.spec.version == self.default_version[name] and len(versions) > 1:
            raise InvalidModelVersion(f"Cannot remove default version for model {name}")
        del versions[runtime.spec.version]
        if not versions:
            del self.models[name]
            del self.default_version[name]
        await runtime.stop()
        return runtime

    def scale(
        self, name: str, version: str | None, min_workers: int, max_workers: int
    ) -> ServedModel:
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

    async def infer(
        self,
        name: str,
        version: str | None,
        body: bytes,
        options: dict[str, Any] | None = None,
    ) -> Job:
        """Queue one request and wait for it; the finished job carries result and timings.
        ``options`` are the request's, already validated (`ocrserve.options.parse_options`)."""
        return await self.get(name, version).submit(body, options or {})

    async def follow(
        self, name: str, version: str | None, body: bytes, options: dict[str, Any] | None = None
    ) -> Job:
        """Queue one request whose document pages are followed as they are read
        (`Job.events`), and return its job at once; a model that answers documents whole (the
        Ray engine's) returns the finished job, with no events."""
        model = self.get(name, version)
        enqueue = getattr(model, "enqueue", None)
        if enqueue is None:
            return await model.submit(body, options or {})
        job: Job = enqueue(body, options or {}, follow=True)
        return job

    def fail_unservable(self) -> None:
        """Fail the queued jobs of models with no ready worker (used when stopping)."""
        for versions in self.models.values():
            for rt in versions.values():
                rt.fail_queued(ServiceUnavailable(f"Model {rt.spec.name} is shutting down"))

    async def shutdown(self) -> None:
        await asyncio.gather(
            *(rt.stop() for versions in self.models.values() for rt in versions.values())
        )
