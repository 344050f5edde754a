"""Work that does not batch (OCR, grounding, image generation), served one request at a time.

Each such route has a ``SerialWorker``: at most ``queue`` requests wait (the rest get 503 with
``Retry-After``), counted in before their inputs are decoded; the work runs on a thread, and a request whose
deadline passes gets 504 while its work finishes in the background before the next one starts (the lock is
released when the thread is done, never earlier), so timeouts cannot pile up threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from vlmkit.serving.errors import ApiError

RETRY_AFTER_S = 1
Result = TypeVar("Result")


class SerialWorker:
    """One request's work at a time, on a thread, behind a bounded queue; ``what`` names it in the 503."""

    def __init__(self, what: str, queue: int) -> None:
        self.what = what
        self.queue = queue
        self.waiting = 0
        self._lock: asyncio.Lock | None = None

    def admit(self) -> None:
        """Count a request in before its inputs are decoded, or refuse it with 503 when the queue is full."""
        if self.waiting >= self.queue:
            raise ApiError(
                503,
                f"the {self.what} queue is full ({self.queue} waiting requests); retry shortly",
                code="queue_full",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.waiting += 1

    def leave(self) -> None:
        self.waiting -= 1

    async def run(self, work: Callable[[], Result]) -> Result:
        """``work`` on a thread, after the one before it has finished; awaited under the caller's deadline."""
        self._lock = self._lock or asyncio.Lock()
        await self._lock.acquire()
        try:
            running = asyncio.ensure_future(asyncio.to_thread(work))
        except BaseException:
            self._lock.release()
            raise
        running.add_done_callback(lambda _: self._lock.release())  # type: ignore[union-attr]
        return await asyncio.shield(running)
