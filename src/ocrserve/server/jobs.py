"""The jobs of a model: one request waiting for or served by a worker (`Job`), and the bounded
queue the model's supervisors take batches from (`JobQueue`)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ocrserve.errors import OcrServeError

__all__ = ["Job", "JobQueue"]


@dataclass
class Job:
    """One inference request waiting for (or being served by) a worker.

    A document (a PDF, a multi-page TIFF) is followed page by page: ``page_numbers`` once a
    worker opened it, ``pages`` as they are read; a job made with ``events`` also gets
    ``("document", numbers)`` and ``("page", entry)`` there (a streamed answer). The future's
    result is then ``{"pages": pages}``.
    """

    body: bytes
    future: asyncio.Future[dict[str, Any]]
    #: The request's validated options (`ocrserve.options`); empty for none.
    options: dict[str, Any] = field(default_factory=dict)
    enqueued: float = field(default_factory=time.monotonic)
    #: Set when a worker takes the job: seconds it waited, and the worker's batch time.
    queue_s: float = 0.0
    handler_s: float = 0.0
    events: asyncio.Queue[tuple[str, Any]] | None = None
    page_numbers: list[int] | None = None
    pages: list[dict[str, Any]] = field(default_factory=list)
    #: ``(worker, batch, index)`` while a worker holds the job.
    running: tuple[Any, int, int] | None = None

    def cancel(self) -> None:
        """The client went away: drop the job, and stop a worker reading its document."""
        if self.running is not None:
            worker, batch, index = self.running
            worker.cancel(batch, [index])
        if not self.future.done():
            self.future.cancel()

    def add_page(self, entry: dict[str, Any]) -> None:
        self.pages.append(entry)
        if self.events is not None:
            self.events.put_nowait(("page", entry))

    def opened(self, numbers: list[int]) -> None:
        """A worker opened the document (again, after a page timed out: the first list stays)."""
        if self.page_numbers is None:
            self.page_numbers = list(numbers)
            if self.events is not None:
                self.events.put_nowait(("document", self.page_numbers))

    def remaining_pages(self) -> list[int]:
        """The document's pages not read yet, in order."""
        done = {entry["page"] for entry in self.pages}
        return [n for n in self.page_numbers or [] if n not in done]

    def finish_document(self) -> None:
        if not self.future.done():
            self.future.set_result({"pages": self.pages})


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
