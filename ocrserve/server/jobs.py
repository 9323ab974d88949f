"""Jobs and the bounded batching queue every model's workers take from."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ocrserve.errors import OcrServeError

__all__ = ["Job", "JobQueue"]


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
