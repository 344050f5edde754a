"""The dual encoder behind ``/v1/embeddings``, ``/v1/classify`` and search queries, on one worker thread.

Text requests waiting together are concatenated into one ``embed_texts`` call and image requests
into one ``embed_images`` call (never mixed: they run different towers); classification runs as a
job of its own. Each request gets back exactly its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from vlmkit.models import DualEncoder
from vlmkit.serving.batching import Batcher, Job
from vlmkit.tasks import classify, embed_images, embed_texts
from vlmkit.tasks.classify import DEFAULT_TEMPLATES, Prediction

TEXT, IMAGE = "text", "image"


@dataclass(frozen=True)
class EmbedPayload:
    kind: str  # TEXT or IMAGE
    inputs: Sequence[str] | Sequence[Image.Image]


@dataclass(frozen=True)
class CallPayload:
    """Work that is not batched with others (classification): run as is on the worker thread."""

    call: Callable[[], Any]


class EncoderService:
    """A ``DualEncoder`` served by a ``Batcher``: ``submit_*`` return jobs whose futures hold results."""

    def __init__(
        self, model: DualEncoder, model_id: str, *, max_batch: int, wait_s: float, queue: int, name: str = "encoder"
    ) -> None:
        self.model = model
        self.model_id = model_id
        self.batcher: Batcher[EmbedPayload | CallPayload] = Batcher(
            name, self._run, max_batch=max_batch, wait_s=wait_s, queue=queue
        )

    @property
    def dim(self) -> int:
        return self.model.config.embed_dim

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the texts take (special tokens included), for ``usage``; padding excluded."""
        if not texts:
            return 0
        return int(self.model.tokenizer(list(texts)).attention_mask.sum())

    def submit_texts(self, texts: Sequence[str]) -> Job[Any]:
        return self.batcher.submit(EmbedPayload(TEXT, list(texts)), key=TEXT, size=len(texts))

    def submit_images(self, images: Sequence[Image.Image]) -> Job[Any]:
        return self.batcher.submit(EmbedPayload(IMAGE, list(images)), key=IMAGE, size=len(images))

    def submit_classify(
        self, image: Image.Image, labels: Sequence[str], templates: Sequence[str] | None, top_k: int
    ) -> Job[Any]:
        def run() -> list[Prediction]:
            return classify(self.model, [image], labels, templates or DEFAULT_TEMPLATES, top_k=top_k)[0]

        return self.batcher.submit(CallPayload(run), key=None)

    def close(self) -> None:
        self.batcher.close()

    def _run(self, jobs: list[Job[EmbedPayload | CallPayload]]) -> None:
        first = jobs[0].payload
        if isinstance(first, CallPayload):
            jobs[0].future.set_result(first.call())
            return
        inputs = [item for job in jobs for item in job.payload.inputs]  # type: ignore[union-attr]
        embed = embed_texts if first.kind == TEXT else embed_images
        vectors: torch.Tensor = embed(self.model, inputs, batch_size=self.batcher.max_batch)
        start = 0
        for job in jobs:
            count = len(job.payload.inputs)  # type: ignore[union-attr]
            job.future.set_result(vectors[start : start + count])
            start += count
