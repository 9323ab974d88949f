"""The Ray engine (``--engine ray``): the same `Engine` registry, models served by Ray Serve.

The HTTP layer stays ocrserve's own (one code path for routes, token auth, limits and error
JSON); only the runtime of each model version differs. `RayModel` deploys one Ray Serve
application per model version (`ocrserve.server.ray_replica`), scales it (``minWorkers`` ==
``maxWorkers``: that many replicas; otherwise Ray's autoscaling between the two), and sends
each request through a deployment handle, with the model's response timeout. A watcher polls
Ray for the replicas of every deployment (their actors: node, pid, state), which describe
lists as workers and ``/ping`` and readiness count.

Nothing here is imported unless ``engine=ray``; Ray is the optional extra ``ocrserve[ray]``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import signal
import time
import zipfile
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ocrserve.archives.spec import ModelSpec
from ocrserve.archives.store import LoadFailure
from ocrserve.errors import (
    ConfigError,
    InternalServerError,
    ServiceUnavailable,
    WorkerTimeout,
    error_from_name,
)
from ocrserve.options import document_pages
from ocrserve.server.devices import threads_per_worker
from ocrserve.server.engine import Engine, ServedModel, queue_full
from ocrserve.server.jobs import Job
from ocrserve.server.ray_placement import ClusterRoom, cluster_room
from ocrserve.server.supervisor import EngineMetrics
from ocrserve.settings import ModelConfig, Settings

# Ray's C++ core prints a stack trace on SIGTERM, the server's graceful stop, and ends the
# process with SIGABRT after it: keep Python's own handling of signals.
os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")

try:
    import ray
    from ray import serve
    from ray.exceptions import RayActorError, RayError
except ImportError as exc:  # pragma: no cover - depends on the extra
    raise ConfigError(
        "engine=ray needs Ray: pip install 'ocrserve[ray]' (ray[serve]==2.60.0)"
    ) from exc

__all__ = ["RayEngine", "RayModel", "Replica", "app_name"]

log = logging.getLogger(__name__)

#: Seconds between two looks at the replicas of every deployment.
WATCH_PERIOD_S = 0.25
#: Tries to join a cluster through Ray Client (``ray://``).
CLIENT_TRIES = 3
#: Requests a replica may hold (Serve's ``max_ongoing_requests``; twice the batch size when
#: that is more): one runs, the rest wait in the replica, which takes the next at once, as a
#: worker takes jobs from its queue. Where every replica is full, Serve's router holds the rest
#: and retries them after a backoff (25 ms, doubling), which leaves a replica idle. Measured on
#: 2 cores, 8 clients: one ``ppocr_rec`` replica answered 31-34 requests/s with 2, 36-40 with 4,
#: 43-46 with 8; two single-thread ``ppocr_det`` replicas 1.49-1.51x one with 2, 1.65-1.67x
#: with 4, 1.33-1.42x with 8 (a deep queue commits requests to one replica while the other
#: has room).
REPLICA_QUEUE = 4
#: (application, deployment): where the replicas of one model version are.
Deployment = tuple[str, str]
#: Seconds a replica may stay unplaced (its actor ``PENDING_CREATION``) before the server says
#: what it waits for, if Ray's demands say it waits for resources: one with room is placed as
#: soon as a worker process starts (about a second on a busy 2-core machine).
WAIT_NOTICE_S = 2.0


def app_name(spec: ModelSpec) -> str:
    """The Ray Serve application of a model version."""
    return f"ocrserve.{spec.name}.{spec.version}"


def archive_bytes(model_dir: str) -> bytes:
    """The extracted archive folder zipped again, for replicas on any node."""
    buf = io.BytesIO()
    root = Path(model_dir)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    return buf.getvalue()


def direct(handle: Any, settings: Settings) -> Any:
    """``handle`` calling replicas over Serve's gRPC channel rather than as Ray actor tasks
    (``_by_reference=False``, Serve's own throughput-optimized mode; setting
    ``ray_replica_grpc``): arguments and answers go straight to the replica instead of through
    the object store. Not through Ray Client (``ray://``): a client's process need not reach
    the replicas' ports."""
    if not settings.ray_replica_grpc or ray.util.client.ray.is_connected():
        return handle
    return handle.options(_by_reference=False)


@dataclass
class Replica:
    """One replica as describe shows it (from its Ray actor)."""

    #: Ray Serve's replica id, and the number describe gives it (TorchServe's from 9000).
    replica_id: str
    id: int
    state: str
    node_id: str
    node_ip: str
    pid: int
    first_seen: float
    #: Resident bytes, read when the replica runs on this machine (0 elsewhere: unknown).
    memory: int = 0


class Gate:
    """What a model lets through to Serve's router: at most the room its replicas have
    (replicas x ``max_ongoing_requests``), so no request meets full replicas and waits out the
    router's backoff; the rest wait here, first come first served, at most ``job_queue_size``
    of them, as in a worker's job queue (a request beyond that is refused with 503)."""

    def __init__(self, room: int, queue_size: int) -> None:
        self.room = room
        self.queue_size = queue_size
        self.inside = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def can_wait(self) -> bool:
        return len(self._waiting) < self.queue_size

    def join(self) -> asyncio.Future[None] | None:
        """Enter at once (None), or take a place in the line (a future, done when let in).
        Synchronous, with `can_wait` before it: no other request can take the place between
        the check and the join."""
        if self.inside < self.room and not self._waiting:
            self.inside += 1
            return None
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        return turn

    @staticmethod
    async def wait(turn: asyncio.Future[None] | None) -> None:
        """Wait for the place `join` gave."""
        if turn is not None:
            await turn

    def release(self, turn: asyncio.Future[None] | None) -> None:
        """Give back what `join` gave, whatever became of it: a place inside is left (and
        passed on), a place in the line is left, a turn failed by `fail_all` is nothing."""
        if turn is None or (turn.done() and not turn.cancelled() and turn.exception() is None):
            self.leave()
            return
        if turn in self._waiting:
            self._waiting.remove(turn)
        if not turn.done():
            turn.cancel()

    def leave(self) -> None:
        self.inside -= 1
        self._admit()

    def resize(self, room: int) -> None:
        self.room = room
        self._admit()

    def fail_all(self, exc: Exception) -> None:
        """Answer everyone in line with ``exc`` (the model is going away)."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_exception(exc)

    def _admit(self) -> None:
        while self._waiting and self.inside < self.room:
            turn = self._waiting.popleft()
            if not turn.done():
                self.inside += 1
                turn.set_result(None)


class RayModel:
    """One model version served by a Ray Serve application (a `ServedModel`)."""

    def __init__(
        self,
        spec: ModelSpec,
        config: ModelConfig,
        settings: Settings,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self.spec = spec
        self.config = config
        self.settings = settings
        self.metrics = metrics
        self.threads = threads_per_worker(settings)
        self.load_error: str | None = None
        self.load_failed = False
        from ocrserve.server.ray_replica import DEPLOYMENT_NAME

        self.app = app_name(spec)
        #: The deployment inside `app` (one per version in a RayService's application).
        self.deployment = DEPLOYMENT_NAME
        #: Replicas seen by the watcher; `running` is what Serve counts as RUNNING.
        self.replicas: list[Replica] = []
        self.running = 0
        self.target = 0
        self.deployed = False
        self._archive: bytes | None = None  # read when first deployed
        self._numbers: dict[str, int] = {}
        #: Replicas whose load time the metrics hold: Serve's replica id -> number.
        self._loads: dict[str, int] = {}
        self._deploying: asyncio.Task[None] | None = None
        self._handle: Any = None
        #: When Serve took the last deployment (a failure seen after it is this one's).
        self._deployed_at = float("inf")
        self.gate = Gate(self._per_replica(), settings.job_queue_size)
        #: What unplaced replicas wait for (`ClusterRoom.why`), or None; describe's rayPending.
        self.waiting: str | None = None
        #: The load error is a wait given up at the startup timeout, not a failed load.
        self._gave_up_waiting = False

    def _per_replica(self) -> int:
        """Serve's ``max_ongoing_requests`` of each replica."""
        return max(2 * self.config.batch_size, REPLICA_QUEUE)

    @property
    def ready_workers(self) -> int:
        return min(self.running, sum(1 for r in self.replicas if r.state == "ALIVE"))

    def _needs(self) -> dict[str, float]:
        """What one replica reserves, as Ray names the resources (the actor options)."""
        gpus = 1.0 if self.config.device_type == "gpu" else 0.0
        needs = {"CPU": float(self.settings.ray_replica_cpus), "GPU": gpus}
        return {name: amount for name, amount in needs.items() if amount}

    def _options(self) -> dict[str, Any]:
        cfg = self.config
        gpus = 1 if cfg.device_type == "gpu" else 0
        opts: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.settings.ray_replica_cpus, "num_gpus": gpus},
            "max_ongoing_requests": self._per_replica(),
            "health_check_period_s": 2.0,
            "health_check_timeout_s": float(max(cfg.response_timeout, 10)),
            # A replica scaled away stops once its requests are answered (at most these).
            "graceful_shutdown_wait_loop_s": 0.5,
            "graceful_shutdown_timeout_s": float(cfg.response_timeout),
            # The server's access log has every request already; Serve's own line per request
            # in each replica costs CPU beside the model.
            "logging_config": {"enable_access_log": False},
        }
        if self.settings.ray_max_replicas_per_node:
            opts["max_replicas_per_node"] = self.settings.ray_max_replicas_per_node
        if cfg.max_workers > cfg.min_workers:
            opts["num_replicas"] = "auto"
            opts["autoscaling_config"] = {
                "min_replicas": cfg.min_workers,
                "max_replicas": cfg.max_workers,
                "initial_replicas": cfg.min_workers,
                "target_ongoing_requests": max(cfg.batch_size, 1),
                # TorchServe runs minWorkers unless busy: come back to it soon when idle.
                "upscale_delay_s": 1.0,
                "downscale_delay_s": 3.0,
            }
        else:
            opts["num_replicas"] = cfg.min_workers
        return opts

    def bound(self) -> Any:
        """The replica deployment of this version, with its options and archive bound."""
        from ocrserve.server.ray_replica import DEPLOYMENT

        if self._archive is None:
            self._archive = archive_bytes(self.spec.model_dir)
        cfg = self.config
        deployment = DEPLOYMENT.options(name=self.deployment, **self._options())
        # Serve gives every serve.run a new random code version (so every replica restarts)
        # unless the deployment has one; its public `version` option is gone, the attribute
        # is still read (serve/_private/client.py). Same archive and settings: same version,
        # so a new replica count is a light update that keeps the running replicas.
        code = hashlib.sha256(self._archive).hexdigest()[:16]
        key = f"{code}-{self.threads}-{cfg.batch_size}-{cfg.max_batch_delay}"
        deployment._version = f"{key}-{cfg.device_type}"
        return deployment.bind(
            self.spec.name,
            self._archive,
            self.threads,
            self.settings.input_limits(),
            cfg.batch_size,
            cfg.max_batch_delay,
            cfg.device_type == "gpu",
        )

    def _deploy(self, count: int) -> None:
        """Deploy or update the application (blocking: run on a thread)."""
        if count == 0 and self.config.max_workers == 0:
            if self.deployed:
                serve.delete(self.app, _blocking=True)
            self.deployed = False
            return
        app = self.bound()
        # Not `serve.run`: it waits until the application runs, forever when the cluster has
        # no room for a replica (a hard per-node cap, too few CPUs), and a thread cannot be
        # cancelled. The watcher sees the replicas come up, or the application fail.
        (handle,) = serve.run_many(
            [serve.RunTarget(app, name=self.app, route_prefix=None)],
            wait_for_applications_running=False,
        )
        self._handle = direct(handle, self.settings)
        self.deployed = True
        self._deployed_at = time.monotonic()

    def scale(self, count: int) -> None:
        """Ask Ray for ``count`` replicas (the config's bounds); Ray starts or stops them."""
        self.target = count
        self.load_failed = False
        self._gave_up_waiting = False
        previous = self._deploying

        async def deploy() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            try:
                await asyncio.to_thread(self._deploy, count)
                self.load_error = None
            except Exception as exc:  # Serve's DEPLOY_FAILED, the cluster gone
                self.load_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
                self.load_failed = True
                log.error("model %s: Ray deployment failed: %s", self.spec.name, exc)

        self._deploying = asyncio.get_running_loop().create_task(deploy())

    def unserved(self) -> ServiceUnavailable:
        if self.load_error:
            return ServiceUnavailable(
                f'Model "{self.spec.name}" has no worker to serve inference request: it failed '
                f"to load ({self.load_error})"
            )
        return ServiceUnavailable(
            f'Model "{self.spec.name}" has no worker to serve inference request. '
            "Please use scale workers API to add workers."
        )

    async def submit(self, body: bytes, options: dict[str, Any]) -> Job:
        """Send one request (and its options) to a replica and wait, at most the response
        timeout."""
        if self.target == 0 and self.config.max_workers == 0 or self.load_failed:
            raise self.unserved()
        if self._handle is None:
            if self._deploying is not None:
                await asyncio.wait({self._deploying}, timeout=self.config.startup_timeout)
            if self._handle is None:
                raise self.unserved()
        if not self.gate.can_wait():
            raise queue_full(self.spec.name, self.settings.job_queue_size)
        job = Job(body, asyncio.get_running_loop().create_future(), options=options)
        started = time.perf_counter()
        # A document has no per-page deadline here (a replica answers it whole): its budget is
        # the response timeout for each page it may have.
        timeout = self.config.response_timeout * document_pages(
            body, options, self.settings.max_pdf_pages
        )
        # One request at a time skips @serve.batch's queue (`OcrReplica.predict_one`).
        method = self._handle.predict if self.config.batch_size > 1 else self._handle.predict_one

        turn = self.gate.join()  # the place is taken now, before any other request's check

        async def through_gate() -> Any:
            await self.gate.wait(turn)
            return await method.remote((body, options))

        try:
            answer = await asyncio.wait_for(through_gate(), timeout)
        except asyncio.TimeoutError:
            raise WorkerTimeout(
                f"Model {self.spec.name}: no answer within {timeout} s. Raise the model's "
                "responseTimeout (default_response_timeout in config.properties, ocrserve "
                "start --default-response-timeout, or response_timeout when registering it)."
            ) from None
        except RayActorError as exc:
            raise InternalServerError(
                f"Replica of model {self.spec.name} died: {type(exc).__name__}"
            ) from None
        except RayError as exc:
            raise InternalServerError(
                f"Ray could not serve model {self.spec.name}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:300] if str(exc) else ''}"
            ) from None
        finally:
            self.gate.release(turn)
        # The replica's batch is the handler's time (as a local worker's round trip); the rest,
        # Serve's routing and queues and the batch's gathering, is the queue's.
        total = time.perf_counter() - started
        job.handler_s = float(answer.get("batch_s", total))
        job.queue_s = max(total - job.handler_s, 0.0)
        self._record(answer)
        if "ok" in answer:
            job.future.set_result(answer["ok"])
        else:
            job.future.set_exception(error_from_name(*answer["error"]))
        return job

    def _record(self, answer: dict[str, Any]) -> None:
        """A replica's answer in the metrics: the batch (once per batch), and the replica's
        load time the first time it answers (``W-<id>-NAME_VERSION``, the id describe shows)."""
        if self.metrics is None:
            return
        name, version = self.spec.name, self.spec.version
        if "batch" in answer:
            self.metrics.record_prediction(
                name, version, float(answer["batch_s"]) * 1000, int(answer["batch"])
            )
        rid = str(answer.get("replica", ""))
        if rid and rid not in self._loads:
            self._loads[rid] = self._numbers.setdefault(rid, 9000 + len(self._numbers))
            self.metrics.record_worker_load(
                name, version, float(answer["load_ms"]), worker_id=self._loads[rid]
            )
        if rid and answer.get("rss"):
            self.metrics.record_worker_memory(
                name, version, int(answer["rss"]), worker_id=self._loads[rid]
            )

    async def wait_ready(self, count: int, timeout: float) -> bool:
        """Wait until Ray runs ``count`` ready replicas and has stopped any beyond the bounds
        (True), or ``timeout`` passes or the deployment failed (False)."""
        deadline = time.monotonic() + timeout
        if self._deploying is not None:
            await asyncio.wait({self._deploying}, timeout=timeout)
            await asyncio.sleep(2 * WATCH_PERIOD_S)  # a look at the replicas after the update
        most = max(count, self.config.max_workers)
        while self.ready_workers < count or len(self.replicas) > most:
            if time.monotonic() > deadline or self.load_failed:
                return False
            await asyncio.sleep(0.05)
        return True

    def fail_queued(self, exc: ServiceUnavailable) -> None:
        """Fail the requests waiting in the line when no replica is ready to take them (used
        when stopping); those sent to Ray are Ray's to answer."""
        if self.ready_workers == 0:
            self.gate.fail_all(exc)

    async def stop(self) -> None:
        self.target = 0
        self.gate.fail_all(ServiceUnavailable(f"Model {self.spec.name} is shutting down"))
        if self._deploying is not None:
            await asyncio.gather(self._deploying, return_exceptions=True)
        if self.deployed:
            try:
                await asyncio.to_thread(serve.delete, self.app, _blocking=True)
            except Exception as exc:  # the cluster may be gone already
                log.warning("model %s: deleting its Ray application: %s", self.spec.name, exc)
        self.deployed = False
        self._handle = None

    def describe(self, default_version: str) -> dict[str, Any]:
        cfg = self.config
        ready = self.ready_workers
        workers = []
        for i, r in enumerate(self.replicas):
            workers.append({
                "id": str(r.id),
                "rayReplica": r.replica_id,
                "startTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(r.first_seen)),
                "status": "READY" if r.state == "ALIVE" and i < ready else "LOADING"
                if r.state in ("ALIVE", "PENDING_CREATION", "DEPENDENCIES_UNREADY") else "STOPPED",
                "memoryUsage": r.memory,
                "pid": r.pid or -1,
                "gpu": cfg.device_type == "gpu",
                "gpuUsage": "N/A",
                "node": r.node_id,
                "nodeIp": r.node_ip,
            })  # fmt: skip
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
            "deviceType": "gpu" if cfg.device_type == "gpu" else "cpu",
            "cpuThreads": self.threads,
            "loadedAtStartup": cfg.loaded_at_startup,
            "isDefault": self.spec.version == default_version,
            "task": self.spec.task,
            "weights": self.spec.weights,
            "pinnedOptions": self.spec.options,
            "status": "Healthy" if ready or not cfg.min_workers else "Unhealthy",
            "workers": workers,
            "jobQueueStatus": {
                "remainingCapacity": self.settings.job_queue_size - self.gate.waiting,
                "pendingRequests": self.gate.waiting,
            },
            "engine": "ray",
            "rayApplication": self.app,
        }  # fmt: skip
        if self.spec.quantization:
            info["quantization"] = self.spec.quantization
        if self.load_error:
            info["loadError"] = self.load_error
        if self.load_failed:
            info["loadFailed"] = True
        if self.waiting:
            info["rayPending"] = self.waiting
        return info

    def observe(
        self,
        running: int,
        actors: list[dict[str, Any]],
        failure: str | None = None,
        looked_at: float = 0.0,
        room: ClusterRoom | None = None,
    ) -> None:
        """The watcher's latest look (begun at ``looked_at``): Serve's RUNNING count, this
        app's replica actors, Serve's message when the application is DEPLOY_FAILED, and what
        Ray cannot place (read while a replica is unplaced)."""
        if failure is not None and looked_at > self._deployed_at and not self.load_failed:
            lines = [line.strip() for line in failure.splitlines() if line.strip()]
            reason = lines[0] if len(lines) < 2 else f"{lines[0]} {lines[-1]}"
            self.load_error = f"Ray Serve: {reason}"[:500]
            self.load_failed = True
            log.error("model %s: Ray deployment failed: %s", self.spec.name, failure)
        seen = {r.replica_id: r for r in self.replicas}
        now = time.time()
        replicas = []
        for a in actors:
            rid = str(a.get("Name", "")).rpartition("#")[2]
            if a.get("State") == "DEAD":
                continue
            address = a.get("Address") or {}
            number = self._numbers.setdefault(rid, 9000 + len(self._numbers))
            replicas.append(
                Replica(
                    rid, number, str(a.get("State")), str(address.get("NodeID", "")),
                    str(address.get("IPAddress", "")), int(a.get("Pid") or 0),
                    seen[rid].first_seen if rid in seen else now,
                    int(a.get("ocrserveMemory", 0)),
                )
            )  # fmt: skip
        self.replicas = sorted(replicas, key=lambda r: r.first_seen)
        self.running = running
        # Room for the running replicas; while none runs, one replica's (they wait in Serve).
        self.gate.resize(max(running, 1) * self._per_replica())
        live = {r.replica_id for r in replicas}
        for rid in [rid for rid in self._loads if rid not in live]:
            number = self._loads.pop(rid)
            if self.metrics is not None:
                self.metrics.forget_worker(self.spec.name, self.spec.version, number)
        self._note_waiting(room, now)

    def _note_waiting(self, room: ClusterRoom | None, now: float) -> None:
        """Say at once (log, describe) what unplaced replicas wait for, when Ray's demands
        have their resources; with no ready replica, give up at the startup timeout, saying
        why (the load error a start reports). A replica placed later serves again."""
        unplaced = [
            r for r in self.replicas
            if r.state == "PENDING_CREATION" and now - r.first_seen >= WAIT_NOTICE_S
        ]  # fmt: skip
        if unplaced and room is None:  # Ray's demands were not read: nothing new
            return
        bundle = room.demand_for(self._needs()) if unplaced and room is not None else None
        if bundle is None or room is None:
            if self.waiting is not None and self.target:  # (not a model going away)
                log.info("model %s: no replica waits for room on the Ray cluster now",
                         self.spec.name)  # fmt: skip
            self.waiting = None
            if self._gave_up_waiting and self.ready_workers:
                self._gave_up_waiting = self.load_failed = False
                self.load_error = None
            return
        why = room.why(len(unplaced), bundle)
        if why != self.waiting:
            log.warning("model %s: %s", self.spec.name, why)
        self.waiting = why
        if self.ready_workers or self.load_failed or not self.gives_up_waiting():
            return
        timeout = self.config.startup_timeout
        if now - min(r.first_seen for r in unplaced) >= timeout:
            self.load_error = f"no replica placed within startupTimeout ({timeout} s): {why}"
            self.load_failed = self._gave_up_waiting = True
            log.error("model %s: %s", self.spec.name, self.load_error)

    def gives_up_waiting(self) -> bool:
        """Whether replicas that wait for room past the startup timeout fail the model (the
        server's own applications; a RayService's Serve config owns its replicas)."""
        return True


def _state(value: Any) -> str:
    return str(getattr(value, "value", value))


def _serve_states() -> tuple[dict[Deployment, int], dict[str, str]]:
    """RUNNING replicas per (application, replica deployment), and the messages of
    DEPLOY_FAILED applications: what ``serve.status()`` says, read from the controller's
    details as they come. ``serve.status()`` parses them into pydantic models first, which
    pickles every deployment's request router class again on each call: 11.5 ms against 3.9
    on this project's 2-core machine, four times a second, in the server's process (the
    server's CPU per request at one client: 4.3-5.9 ms before, 3.4-4.1 after)."""
    from ray.serve.context import _get_global_client

    from ocrserve.server.ray_replica import is_replica_deployment

    client = _get_global_client(raise_if_no_controller_running=False)
    if client is None:  # Serve not started yet
        return {}, {}
    applications = client.get_serve_details().get("applications") or {}
    failed = {
        name: app.get("message") or "DEPLOY_FAILED"
        for name, app in applications.items()
        if _state(app.get("status")) == "DEPLOY_FAILED"
    }
    running = {
        (name, dep_name): sum(_state(r.get("state")) == "RUNNING" for r in dep.get("replicas", ()))
        for name, app in applications.items()
        for dep_name, dep in (app.get("deployments") or {}).items()
        if is_replica_deployment(dep_name)
    }
    return running, failed


def _rss(pid: int) -> int:
    """Resident bytes of a process of this machine (0 when it is gone)."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.Error, OSError):
        return 0


class RayEngine(Engine):
    """`Engine` whose model versions are Ray Serve applications."""

    def __init__(self, settings: Settings, metrics: EngineMetrics | None = None) -> None:
        super().__init__(settings, metrics)
        self._watcher: asyncio.Task[None] | None = None
        self._client = False
        self._lister: Any = None
        self._roomer: Any = None
        self._last_error = ""

    def new_model(self, spec: ModelSpec, config: ModelConfig) -> ServedModel:
        return RayModel(spec, config, self.settings, self.metrics)

    def connect(self) -> None:
        """Join (or start) the Ray cluster and start Serve without its HTTP proxy."""
        address = self.settings.ray_address or None
        # ray.init makes SIGTERM exit at once (sys.exit(15)); the server's graceful stop stays.
        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        tries = CLIENT_TRIES if (address or "").startswith("ray://") else 1
        for attempt in range(1, tries + 1):
            try:
                ray.init(address=address, namespace="ocrserve", log_to_driver=False)
                break
            except (ConnectionError, RuntimeError) as exc:
                # The head's client proxy starts a server per client, and that start can
                # fail on a busy head: try again before giving up.
                if attempt == tries:
                    raise
                log.warning("Ray engine: joining %s failed (%s); trying again", address, exc)
                ray.shutdown()
                time.sleep(2.0 * attempt)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        self._client = bool(ray.util.client.ray.is_connected())
        serve.start(proxy_location="Disabled")
        log.info("Ray engine: joined %s", ray.get_runtime_context().gcs_address)

    async def start(
        self,
        specs: Iterable[ModelSpec],
        failures: Iterable[LoadFailure] = (),
        configs: dict[tuple[str, str], ModelConfig] | None = None,
    ) -> None:
        try:
            if not ray.is_initialized():  # a RayService's ingress runs inside the cluster
                self.connect()  # on the main thread: Ray's driver is not to be started on another
        except Exception as exc:
            raise ConfigError(
                f"ray_address={self.settings.ray_address!r}: cannot join Ray ({exc})"
            ) from exc
        self._watcher = asyncio.get_running_loop().create_task(self._watch())
        await super().start(specs, failures, configs)

    def _look(
        self,
    ) -> tuple[
        dict[Deployment, int], dict[Deployment, list[dict[str, Any]]], dict[str, str],
        ClusterRoom | None,
    ]:  # fmt: skip
        """Serve's RUNNING replica counts and the replica actors, per (application,
        deployment), the messages of failed applications, and while a replica is unplaced,
        what Ray cannot place."""
        from ocrserve.server.ray_replica import replica_actors

        running, failed = _serve_states()
        if self._client:  # Ray Client: the actor table is read by a task in the cluster
            if self._lister is None:
                self._lister = ray.remote(num_cpus=0)(replica_actors)
            listed = ray.get(self._lister.remote(), timeout=10)
        else:
            listed = replica_actors()
        actors: dict[Deployment, list[dict[str, Any]]] = {}
        for app, deployment, actor in listed:
            actors.setdefault((app, deployment), []).append(actor)
        here = None if self._client else ray.util.get_node_ip_address()
        for replicas in actors.values():
            for actor in replicas:
                if (actor.get("Address") or {}).get("IPAddress") == here and actor.get("Pid"):
                    actor["ocrserveMemory"] = _rss(int(actor["Pid"]))
        unplaced = any(actor.get("State") == "PENDING_CREATION" for _, _, actor in listed)
        return running, actors, failed, self._room() if unplaced else None

    def _room(self) -> ClusterRoom | None:
        """Ray's pending demands (None when they cannot be read: an older Ray, no access)."""
        try:
            if not self._client:
                return ClusterRoom.from_plain(cluster_room())
            if self._roomer is None:
                self._roomer = ray.remote(num_cpus=0)(cluster_room)
            return ClusterRoom.from_plain(ray.get(self._roomer.remote(), timeout=10))
        except Exception as exc:
            log.debug("Ray engine: cannot read the pending demands: %s", exc)
            return None

    async def _watch(self) -> None:
        while True:
            looked_at = time.monotonic()
            failed: dict[str, str] = {}
            room: ClusterRoom | None = None
            try:
                running, actors, failed, room = await asyncio.to_thread(self._look)
            except Exception as exc:  # the cluster unreachable: nothing counts as live
                if str(exc) != self._last_error:
                    log.warning("Ray engine: cannot read the replicas: %s", exc)
                self._last_error = str(exc)
                running, actors = {}, {}
            else:
                self._last_error = ""
            for versions in self.models.values():
                for model in versions.values():
                    if isinstance(model, RayModel):
                        key = (model.app, model.deployment)
                        model.observe(
                            running.get(key, 0), actors.get(key, []),
                            failed.get(model.app), looked_at, room,
                        )  # fmt: skip
            await asyncio.sleep(WATCH_PERIOD_S)

    async def shutdown(self) -> None:
        await super().shutdown()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        ray.shutdown()
