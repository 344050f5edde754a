"""``/v1/read``'s worker: one OCR reading at a time on a thread, a bounded queue in front of it.

OCR takes seconds of CPU a page and does not batch, so pages are read one after another; at most ``queue``
requests wait (the rest get 503 with ``Retry-After``), and a request whose deadline passes gets 504 while its
reading finishes in the background before the next one starts (the lock is released when the thread is done,
never earlier), so timeouts cannot pile up threads.
"""

from __future__ import annotations

import asyncio

from PIL import Image

from vlmkit.documents.types import Page
from vlmkit.serving.errors import ApiError

RETRY_AFTER_S = 1


class ReadService:
    def __init__(self, engine: str, queue: int) -> None:
        self.engine = engine
        self.queue = queue
        self.waiting = 0
        self._lock: asyncio.Lock | None = None

    def admit(self) -> None:
        """Count a request in before its image is decoded, or refuse it with 503 when the queue is full."""
        if self.waiting >= self.queue:
            raise ApiError(
                503,
                f"the read queue is full ({self.queue} waiting requests); retry shortly",
                code="queue_full",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.waiting += 1

    def leave(self) -> None:
        self.waiting -= 1

    async def read(self, image: Image.Image) -> Page:
        """The page read by this server's engine; awaited under the caller's deadline."""
        from vlmkit.tasks.documents import read_image

        self._lock = self._lock or asyncio.Lock()
        await self._lock.acquire()
        try:
            reading = asyncio.ensure_future(asyncio.to_thread(read_image, image, engine=self.engine))
        except BaseException:
            self._lock.release()
            raise
        reading.add_done_callback(lambda _: self._lock.release())  # type: ignore[union-attr]
        return await asyncio.shield(reading)
