"""Dynamic batching: one worker thread per model, fed by a bounded queue of compatible jobs.

A model call costs nearly the same for one input as for several on a CPU or GPU, so the worker,
after taking the oldest job, waits up to ``wait_s`` for more jobs with the same ``key`` (jobs that
can share one call: text embeddings, image embeddings, chat prompts with the same sampling
settings) until ``max_batch`` inputs are gathered, then runs them together. Jobs with another key
stay queued, in order, for the next round. Running model code on this thread keeps the event loop
free to accept and stream while the model works.

The queue is bounded: ``submit`` raises ``QueueFull`` rather than letting a burst grow memory and
latency without limit; the server turns that into 503 with Retry-After. Each job carries a
``concurrent.futures.Future``; a job cancelled before it starts is skipped, a running one sees
``cancelled`` set and may stop early (generation does, after the current token).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

P = TypeVar("P")


class QueueFull(Exception):
    """The worker's queue holds its maximum of waiting jobs."""


class WorkerClosed(Exception):
    """The worker is shutting down and takes no new jobs."""


@dataclass(eq=False)
class Job(Generic[P]):
    """One request's work: ``payload`` for the batch function, ``size`` inputs towards ``max_batch``."""

    payload: P
    key: Hashable
    size: int = 1
    future: Future[Any] = field(default_factory=Future)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the job to stop: skipped if still queued, told through ``cancelled`` if running."""
        self.cancelled.set()
        self.future.cancel()


BatchFunction = Callable[[list[Job[P]]], None]
"""Runs a batch; must resolve each job's future (the worker fails those it leaves unresolved)."""


class Batcher(Generic[P]):
    """A worker thread running ``run_batch`` over batches of same-key jobs from a bounded queue."""

    def __init__(
        self, name: str, run_batch: BatchFunction[P], *, max_batch: int = 16, wait_s: float = 0.005, queue: int = 64
    ) -> None:
        self.name = name
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.queue_size = queue
        self.batches = 0
        self.batched_inputs = 0
        self._pending: collections.deque[Job[P]] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=f"vlmkit-{name}", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Jobs waiting (not yet running)."""
        return len(self._pending)

    def submit(self, payload: P, key: Hashable = None, size: int = 1) -> Job[P]:
        job = Job(payload, key, size)
        with self._cond:
            if self._closed:
                raise WorkerClosed(f"the {self.name} worker is shutting down")
            if len(self._pending) >= self.queue_size:
                raise QueueFull(f"the {self.name} queue is full ({self.queue_size} waiting requests)")
            self._pending.append(job)
            self._cond.notify()
        return job

    def close(self, timeout: float | None = None) -> None:
        """Take no new jobs, finish the queued ones, and stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            started = [job for job in batch if job.future.set_running_or_notify_cancel()]
            if not started:
                continue
            self.batches += 1
            self.batched_inputs += sum(job.size for job in started)
            try:
                self.run_batch(started)
            except BaseException as error:  # handed to every waiting request, whatever it is
                for job in started:
                    if not job.future.done():
                        job.future.set_exception(error)
            for job in started:
                if not job.future.done():
                    job.future.set_exception(RuntimeError(f"{self.name} worker left the job unresolved"))

    def _next_batch(self) -> list[Job[P]] | None:
        with self._cond:
            while not self._pending:
                if self._closed:
                    return None
                self._cond.wait()
            first = self._pending.popleft()
            batch, size = [first], first.size
            deadline = time.monotonic() + self.wait_s
            while size < self.max_batch:
                size += self._take_matching(first.key, batch, self.max_batch - size)
                remaining = deadline - time.monotonic()
                if size >= self.max_batch or remaining <= 0 or self._closed:
                    break
                self._cond.wait(remaining)
            return batch

    def _take_matching(self, key: Hashable, batch: list[Job[P]], room: int) -> int:
        """Move queued jobs with ``key`` that fit in ``room`` inputs into ``batch``; returns inputs taken."""
        taken = 0
        kept: collections.deque[Job[P]] = collections.deque()
        while self._pending:
            job = self._pending.popleft()
            if key is not None and job.key == key and job.size <= room - taken:
                batch.append(job)
                taken += job.size
            else:
                kept.append(job)
        self._pending = kept
        return taken
