"""A worker process and the pipe to it (see `ocrserve.server.worker` for the other end)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from ocrserve.archives.spec import ModelSpec
from ocrserve.errors import InternalServerError, WorkerTimeout, error_from_name
from ocrserve.server.worker import READY, worker_main
from ocrserve.settings import InputLimits

__all__ = ["FrameTimeout", "Worker"]

_ctx = mp.get_context("spawn")


class FrameTimeout(Exception):
    """No frame came from the worker within the response timeout."""


class Worker:
    """A worker process and the pipe to it. Blocking calls run on its own thread."""

    def __init__(
        self,
        wid: int,
        spec: ModelSpec,
        threads: int,
        limits: InputLimits,
        log_dir: str | None = None,
        *,
        gpu: int | None = None,
    ) -> None:
        self.id = wid
        self.spec = spec
        #: Where the model runs, as the worker reports once loaded ("cpu", "cuda:0", ...).
        self.device = "cpu"
        parent, child = _ctx.Pipe(duplex=True)
        self.conn: Connection = parent
        self.process = _ctx.Process(
            target=worker_main,
            args=(child, spec, threads, limits, log_dir, wid, gpu),
            name=f"ocrserve-worker-{spec.name}-{wid}",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.start_time = time.time()
        self.status = "LOADING"
        #: The worker's resident memory in bytes after its last batch, as it reported it.
        self.rss = 0
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
        self.device = str(msg.get("device", "cpu"))

    def exchange(
        self,
        bodies: list[bytes],
        options: list[dict[str, Any]] | None,
        batch: int,
        on_event: Callable[[dict[str, Any]], None],
        timeout: float,
    ) -> list[dict[str, Any]]:
        """Send one batch and return its answers; every event frame before them goes to
        ``on_event`` (on this thread). `FrameTimeout` when ``timeout`` seconds pass without
        a frame: the limit applies to each step (a document's page), not to the batch."""
        header: dict[str, Any] = {"n": len(bodies), "batch": batch}
        if options and any(options):
            header["options"] = options
        self.conn.send_bytes(json.dumps(header).encode())
        for body in bodies:
            self.conn.send_bytes(body)
        while True:
            if not self.conn.poll(timeout):
                raise FrameTimeout(timeout)
            msg = json.loads(self.conn.recv_bytes())
            if "results" in msg:
                self.rss = int(msg.get("rss", 0))
                return list(msg["results"])
            on_event(msg)

    def cancel(self, batch: int, indexes: list[int]) -> None:
        """Tell the worker to stop reading these documents of ``batch`` (between pages)."""
        try:
            self.conn.send_bytes(json.dumps({"cancel": indexes, "batch": batch}).encode())
        except (OSError, ValueError):
            pass  # the worker is gone: nothing to stop

    def memory_usage(self) -> int:
        """Resident memory of the worker process in bytes (0 when unknown)."""
        try:
            with open(f"/proc/{self.pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()
        self.executor.shutdown(wait=False)
        self.status = "STOPPED"
