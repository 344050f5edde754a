"""What the routes share: the served models and their workers, the limits, the metrics; admission
to a worker before a request is prepared for it; and the bridge from a worker's job to an awaiting
request (deadline -> 504, full queue -> 503)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from vlmkit.models import Decoder, DualEncoder, Qwen2VLModel, VisionLanguageModel
from vlmkit.serving.batching import Batcher, Job, QueueFull, WorkerClosed
from vlmkit.serving.chat import ChatService
from vlmkit.serving.encoder import EncoderService
from vlmkit.serving.errors import ApiError
from vlmkit.serving.limits import ServerLimits
from vlmkit.serving.metrics import Metrics
from vlmkit.serving.reading import ReadService

if TYPE_CHECKING:  # the search extra (faiss) is needed only by a server that searches
    from vlmkit.search.store import SearchStore
    from vlmkit.serving.search import SearchService

T = TypeVar("T")
RETRY_AFTER_S = 1


@dataclass
class ServedModels:
    """The models a server offers, by the ids clients name them with.

    Attributes:
        encoder: dual encoder for ``/v1/embeddings`` and ``/v1/classify``.
        chat: generative model for ``/v1/chat/completions``.
        index: search index for ``/v1/search``.
        index_encoder: the model that built ``index`` (its manifest's ``model_id``); None: ``encoder``.
        images_root: folder that relative paths in ``index`` are relative to.
        absolute_paths: search hits name files by their absolute server paths (else relative ones).
        read_engine: the OCR engine ``/v1/read`` uses (None: the route is off).
        mask_tokenizer: the mask tokenizer ``chat`` was trained with (``/v1/segment``; None: off).
        t2i: text-to-image model for ``/v1/images/generations`` (None: off).
    """

    encoder: DualEncoder | None = None
    encoder_id: str = "encoder"
    chat: VisionLanguageModel | Qwen2VLModel | Decoder | None = None
    chat_id: str = "chat"
    index: SearchStore | None = None
    index_encoder: DualEncoder | None = None
    index_encoder_id: str | None = None
    images_root: Path | None = None
    absolute_paths: bool = False
    read_engine: str | None = None
    mask_tokenizer: Any = None
    t2i: Any = None
    t2i_id: str = "t2i"


@dataclass
class ServerState:
    """Workers are started by ``start`` (the app's lifespan) and drained by ``close``."""

    models: ServedModels
    limits: ServerLimits
    metrics: Metrics = field(default_factory=Metrics)
    encoder: EncoderService | None = None
    chat: ChatService | None = None
    search: SearchService | None = None
    search_encoder: EncoderService | None = None
    read: ReadService | None = None
    started: int = field(default_factory=lambda: int(time.time()))
    preparing: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @contextlib.contextmanager
    def admit(self, batcher: Batcher[Any]) -> Iterator[None]:
        """Admission to ``batcher`` before a request is prepared for it (text tokenized, images decoded).

        Requests being prepared count against the worker's queue with those already queued, so a burst
        is refused with 503 before it costs decoding and memory, not after. The slot is held until the
        job is submitted (then the queue itself bounds it) or the request fails. Event loop only.
        """
        if self.preparing[batcher.name] + batcher.depth >= batcher.queue_size:
            raise ApiError(
                503,
                f"the {batcher.name} queue is full ({batcher.queue_size} waiting requests); retry shortly",
                code="queue_full",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.preparing[batcher.name] += 1
        try:
            yield
        finally:
            self.preparing[batcher.name] -= 1

    def capabilities(self) -> dict[str, list[str]]:
        """Each served model's id and what it is used for (chat, embeddings, classify, search)."""
        found: dict[str, list[str]] = {}
        uses = [(self.chat, ("chat",)), (self.encoder, ("embeddings", "classify")), (self.search_encoder, ("search",))]
        for service, names in uses:
            if service is not None:
                found.setdefault(service.model_id, []).extend(names)
        return found

    def start(self) -> None:
        models, limits = self.models, self.limits
        batching = {"max_batch": limits.max_batch, "wait_s": limits.batch_wait_ms / 1000, "queue": limits.queue}
        if models.encoder is not None:
            self.encoder = EncoderService(models.encoder, models.encoder_id, **batching)
        if models.chat is not None:
            self.chat = ChatService(models.chat, models.chat_id, metrics=self.metrics, **batching)
        if models.read_engine is not None:
            self.read = ReadService(models.read_engine, limits.queue)
        if models.index is not None:
            from vlmkit.serving.search import SearchService

            self.search = SearchService(
                models.index, models.images_root, limits.max_image_pixels, absolute_paths=models.absolute_paths
            )
            if models.index_encoder is None or models.index_encoder is models.encoder:
                self.search_encoder = self.encoder
            else:
                self.search_encoder = EncoderService(
                    models.index_encoder,
                    models.index_encoder_id or models.index.model_id,
                    name="search-encoder",
                    **batching,
                )
        batchers = [service.batcher for service in self._services().values()]
        self.metrics.gauge("queue_depth", lambda: {b.name: float(b.depth) for b in batchers})
        self.metrics.gauge(
            "mean_batch_inputs", lambda: {b.name: b.batched_inputs / max(b.batches, 1) for b in batchers}
        )

    def close(self) -> None:
        for service in self._services().values():
            service.close()

    def _services(self) -> dict[str, EncoderService | ChatService]:
        found = {"encoder": self.encoder, "chat": self.chat, "search_encoder": self.search_encoder}
        unique: dict[str, EncoderService | ChatService] = {}
        for name, service in found.items():
            if service is not None and service not in unique.values():
                unique[name] = service
        return unique


def submit(make_job: Callable[[], Job[Any]]) -> Job[Any]:
    """Queue a job, turning a full or closing queue into 503 with Retry-After."""
    try:
        return make_job()
    except (QueueFull, WorkerClosed) as error:
        raise ApiError(
            503, f"{error}; retry shortly", code="queue_full", headers={"Retry-After": str(RETRY_AFTER_S)}
        ) from None


class Deadline:
    """The request's time budget, counted from its arrival."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def expired(self) -> ApiError:
        return ApiError(504, f"request took longer than the server's limit of {self.seconds:g} s", code="timeout")

    async def wait(self, awaitable: Any) -> Any:
        """Await within the budget, or raise 504."""
        try:
            return await asyncio.wait_for(awaitable, max(self.left(), 0.0))
        except asyncio.TimeoutError:
            raise self.expired() from None


async def result(job: Job[Any], deadline: Deadline) -> Any:
    """The job's result within the deadline; on timeout the job is cancelled and 504 raised."""
    try:
        return await deadline.wait(asyncio.wrap_future(job.future))
    finally:
        if not job.future.done():
            job.cancel()
