"""``/v1/read``'s worker: OCR takes seconds of CPU a page and does not batch, so pages are read one after
another (``serial.SerialWorker``)."""

from __future__ import annotations

from PIL import Image

from vlmkit.documents.types import Page
from vlmkit.serving.serial import SerialWorker


class ReadService(SerialWorker):
    def __init__(self, engine: str, queue: int) -> None:
        super().__init__("read", queue)
        self.engine = engine

    async def read(self, image: Image.Image) -> Page:
        """The page read by this server's engine; awaited under the caller's deadline."""
        from vlmkit.tasks.documents import read_image

        return await self.run(lambda: read_image(image, engine=self.engine))
