"""The Ray Serve deployment that serves one model version (``--engine ray``).

A replica gets the model's archive as bytes in its init arguments, so Ray carries it through
its object store to whichever node the replica lands on: no shared file system. It extracts
the archive with the same checks as the model store, builds the predictor as a local worker
does (`ocrserve.server.worker`), and answers batches that ``@serve.batch`` gathers (the
model's ``batchSize`` and ``maxBatchDelay``). Answers are the worker's wire dicts
(``{"ok": result}`` or ``{"error": [type, message]}``), so errors map as for local workers.

Imported only by `ocrserve.server.ray_engine`, itself imported only with ``engine=ray``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ray import serve

from ocrserve.archives.mar import extract_archive
from ocrserve.server.worker import (
    WorkerMemory,
    _answer,
    _build,
    _import_opencv,
    limit_threads,
    tune_malloc,
)
from ocrserve.settings import InputLimits

__all__ = [
    "DEPLOYMENT",
    "DEPLOYMENT_NAME",
    "OcrReplica",
    "is_replica_deployment",
    "replica_actors",
]

#: The deployment's name inside each model version's application.
DEPLOYMENT_NAME = "OcrReplica"


class OcrReplica:
    """One replica: a predictor built from the archive bytes, answering batches."""

    def __init__(
        self,
        name: str,
        archive: bytes,
        threads: int,
        limits: InputLimits,
        batch_size: int,
        max_batch_delay_ms: int,
        use_gpu: bool,
    ) -> None:
        limit_threads(threads)
        # The local worker's memory policy: freed buffers kept in the heap, given back after a
        # batch that left the replica over its usual size (`WorkerMemory`).
        tune_malloc()
        self.memory = WorkerMemory()
        self.limits = limits
        self.folder = Path(tempfile.mkdtemp(prefix=f"ocrserve-ray-{name}-"))
        mar = self.folder / "model.mar"
        mar.write_bytes(archive)
        model_dir = self.folder / "model"
        extract_archive(mar, model_dir)
        mar.unlink()
        started = time.perf_counter()
        _import_opencv().setNumThreads(threads)
        spec_dir = str(model_dir)
        self.predictor = _build_from_dir(spec_dir, threads, 0 if use_gpu else None)
        self.load_ms = (time.perf_counter() - started) * 1000
        #: Ray Serve's id of this replica (the last part of its actor's name).
        self.replica_id = serve.get_replica_context().replica_id.unique_id
        self._one_at_a_time = ThreadPoolExecutor(1, thread_name_prefix="ocrserve-predict")
        batched: Any = self.predict  # serve.batch's setters (typed only where Ray is installed)
        batched.set_max_batch_size(batch_size)
        batched.set_batch_wait_timeout_s(max_batch_delay_ms / 1000)

    @serve.batch(max_batch_size=1, batch_wait_timeout_s=0.0)
    async def predict(self, requests: list[tuple[bytes, dict[str, Any]]]) -> list[dict[str, Any]]:
        """One wire answer per ``(body, options)`` (options validated by the server)."""
        return await self._answer([body for body, _ in requests], [opts for _, opts in requests])

    async def predict_one(self, request: tuple[bytes, dict[str, Any]]) -> dict[str, Any]:
        """`predict` for a model whose ``batchSize`` is 1, without ``@serve.batch``'s queue
        and task (about 1 ms a request on this project's 2-core machine)."""
        (answer,) = await self._answer([request[0]], [request[1]])
        return answer

    async def _answer(
        self, bodies: list[bytes], options: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The model runs off the replica's event loop, one batch at a time, as a worker runs
        its batches (Serve lets a replica hold ``max_ongoing_requests``: they queue, never
        overlap). Each answer also says which replica gave it, the replica's load time and the
        batch's time (``batch_s``); the first one of a batch its size (``batch``): the
        server's metrics."""
        started = time.perf_counter()
        answers, rss = await asyncio.get_running_loop().run_in_executor(
            self._one_at_a_time, self._run, bodies, options
        )
        took = time.perf_counter() - started
        for answer in answers:
            answer.update(replica=self.replica_id, load_ms=self.load_ms, batch_s=took, rss=rss)
        if answers:
            answers[0]["batch"] = len(answers)
        return answers

    def _run(
        self, bodies: list[bytes], options: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], int]:
        """A batch's answers and the replica's resident bytes after it (trimmed when the batch
        raised it)."""
        answers = _answer(self.predictor, bodies, self.limits, options)
        del bodies
        return answers, self.memory.after_batch()

    async def __call__(self, request: tuple[bytes, dict[str, Any]]) -> dict[str, Any]:
        return await self.predict(request)

    def info(self) -> dict[str, Any]:
        """Where this replica runs (for logs and tests)."""
        import ray

        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "folder", ""), ignore_errors=True)


#: The deployment each model version's application binds (options set per model).
DEPLOYMENT: serve.Deployment = serve.deployment(name=DEPLOYMENT_NAME)(OcrReplica)


def _build_from_dir(model_dir: str, threads: int, gpu: int | None) -> Any:
    """The worker's `_build`, for a folder rather than a `ModelSpec`."""
    from ocrserve.archives.spec import ModelSpec

    spec = ModelSpec(name="", version="", task="", model_dir=model_dir, url="")
    predictor = _build(spec, threads, gpu)
    from ocrserve.server.worker import set_torch_threads

    set_torch_threads(threads)
    return predictor


def is_replica_deployment(name: str) -> bool:
    """``OcrReplica`` (the server's applications) or ``OcrReplica.NAME.VERSION`` (the one
    application of a RayService, `ocrserve.server.ray_app`)."""
    return name == DEPLOYMENT_NAME or name.startswith(f"{DEPLOYMENT_NAME}.")


def replica_actors() -> list[tuple[str, str, dict[str, Any]]]:
    """``(application, deployment, actor)`` for every replica actor of a model version, from
    Ray's actor table (run in the server, or as a task in the cluster for a Ray Client
    server)."""
    from ray._private import state

    out: list[tuple[str, str, dict[str, Any]]] = []
    for actor in state.actors().values():
        cls = str(actor.get("ActorClassName", ""))
        app, _, deployment = cls.removeprefix("ServeReplica:").rpartition(":")
        if cls.startswith("ServeReplica:") and is_replica_deployment(deployment):
            address = actor.get("Address") or {}
            plain = {  # plain values only: the table's own hold protobuf objects
                "Name": str(actor.get("Name", "")),
                "State": str(actor.get("State", "")),
                "Pid": int(actor.get("Pid") or 0),
                "Address": {
                    "NodeID": str(address.get("NodeID", "")),
                    "IPAddress": str(address.get("IPAddress", "")),
                },
            }
            out.append((app, deployment, plain))
    return out
