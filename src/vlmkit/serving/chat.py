"""The generative model behind ``/v1/chat/completions``: batched, streamed generation on one worker thread.

Requests that wait together and can share a sampler run as one left-padded batch (``Decoding``
from ``vlmkit.models.generation``): every greedy request batches with every other, sampled ones
when their temperature, top-k and top-p agree; a sampled request with a ``seed`` runs alone, so its
output depends on its seed only. Each row has its own stop strings, token limit and text stream,
and ends on its own (EOS, stop string, limit, or its client leaving); the batch ends when all rows
have. Batches are formed per round: a request arriving mid-generation waits for the next round.

Text pieces and the final event are handed to the request's ``emit`` callback from this thread;
the route forwards them to the event loop.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from vlmkit.models import Decoder
from vlmkit.models.generation import Decoding, GenerationConfig, TextStream, eos_ids
from vlmkit.nn.kv_cache import KVCache
from vlmkit.serving.batching import Batcher, Job
from vlmkit.serving.metrics import Metrics
from vlmkit.tasks.chat import chat_encoder, decoder_of, images_encoder, takes_images, with_template_stops
from vlmkit.tasks.image_prompts import Model, image_inputs, lays_out_by_size, start


@dataclass(frozen=True)
class Piece:
    text: str


@dataclass(frozen=True)
class Finished:
    reason: str  # "stop" (EOS or stop string) or "length"
    completion_tokens: int


@dataclass(frozen=True)
class Failed:
    error: BaseException


Event = Piece | Finished | Failed


@dataclass(frozen=True)
class ChatPayload:
    prompt: list[int]
    images: list[Image.Image]
    config: GenerationConfig
    emit: Callable[[Event], None]


def batch_key(config: GenerationConfig) -> Hashable | None:
    """Requests with equal keys can share one sampler; None runs alone."""
    if config.temperature == 0:
        return ("greedy", config.repetition_penalty)
    if config.seed is not None:
        return None
    return ("sample", config.temperature, config.top_k, config.top_p, config.repetition_penalty)


class _Row:
    """One request inside a running batch: its stream, its limit, and how it ended."""

    def __init__(self, job: Job[ChatPayload], tokenizer: Any) -> None:
        self.job = job
        self.stream = TextStream(tokenizer, job.payload.config.stop)
        self.limit = job.payload.config.max_new_tokens
        self.count = 0

    def advance(self, token: int, ends: frozenset[int]) -> str | None:
        """Take the row's next token; returns why the row ends, or None to go on."""
        if self.job.cancelled.is_set():
            return "cancelled"
        if token in ends:
            return "stop"
        self.count += 1
        piece = self.stream.push(token)
        if piece:
            self.job.payload.emit(Piece(piece))
        if self.stream.stopped:
            return "stop"
        return "length" if self.count >= self.limit else None

    def end(self, reason: str) -> None:
        if reason != "cancelled":
            rest = self.stream.flush()
            if rest:
                self.job.payload.emit(Piece(rest))
            self.job.payload.emit(Finished(reason, self.count))
        self.job.future.set_result(self.count)


class ChatService:
    """A VLM (or text decoder) served by a ``Batcher``; ``encode`` builds prompts, ``submit`` queues them."""

    def __init__(
        self, model: Model, model_id: str, *, max_batch: int, wait_s: float, queue: int, metrics: Metrics
    ) -> None:
        self.model = model
        self.model_id = model_id
        self.metrics = metrics
        self.sized_images = lays_out_by_size(model)  # prompts are encoded with their images' own layouts
        self.encoder = chat_encoder(model, images=not self.sized_images)
        self.stop = with_template_stops(model, None).stop  # none under a Jinja template: its turns end in EOS
        self.takes_images = takes_images(model)
        self.batcher: Batcher[ChatPayload] = Batcher("chat", self._run, max_batch=max_batch, wait_s=wait_s, queue=queue)

    @property
    def decoder(self) -> Decoder:
        return decoder_of(self.model)

    @property
    def max_positions(self) -> int:
        return self.decoder.config.max_positions

    def encode(self, turns: Sequence[Mapping[str, str]], images: Sequence[Image.Image] = ()) -> list[int]:
        """Prompt ids of a conversation (``{"role", "content"}`` with ``<image>`` placeholders for ``images``);
        a model that tiles or splits images gets each image's own layout. Only for such a model the processor runs
        here too: ``_prepare`` runs it again over the whole batch, which pads crops across requests."""
        encoder = self.encoder
        if images and self.sized_images:
            encoder = images_encoder(self.model, image_inputs(self.model, images), range(len(images)))
        return encoder.encode(turns, add_generation_prompt=True).input_ids

    def submit(
        self, prompt: list[int], images: list[Image.Image], config: GenerationConfig, emit: Callable[[Event], None]
    ) -> Job[ChatPayload]:
        config = dataclasses.replace(config, stop=tuple(dict.fromkeys((*self.stop, *config.stop))))
        job = self.batcher.submit(ChatPayload(prompt, images, config, emit), key=batch_key(config))

        def report_failure(future: Any) -> None:
            if not future.cancelled() and future.exception() is not None:
                emit(Failed(future.exception()))

        job.future.add_done_callback(report_failure)
        return job

    def close(self) -> None:
        self.batcher.close()

    def _run(self, jobs: list[Job[ChatPayload]]) -> None:
        started = time.perf_counter()
        tokenizer = self.model.tokenizer
        config = dataclasses.replace(
            jobs[0].payload.config, max_new_tokens=max(job.payload.config.max_new_tokens for job in jobs), stop=()
        )
        ids, mask, embeds, cache = self._prepare(jobs, config.max_new_tokens)
        run = Decoding(self.decoder, ids, mask, config, inputs_embeds=embeds, cache=cache)
        ends = eos_ids(self.decoder, config, tokenizer)
        rows = [_Row(job, tokenizer) for job in jobs]
        while not run.done:
            for index, token in enumerate(run.step().tolist()):
                if run.finished[index]:
                    continue
                reason = rows[index].advance(token, ends)
                if reason is not None:
                    run.finish(index)
                    rows[index].end(reason)
        for index, row in enumerate(rows):
            if not run.finished[index]:  # the batch ran out of positions before the row's own limit
                row.end("length")
        self.metrics.observe_generation(sum(row.count for row in rows), time.perf_counter() - started)

    def _prepare(
        self, jobs: list[Job[ChatPayload]], max_new_tokens: int
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, KVCache | None]:
        """The batch's prompts as ``Decoding`` takes them (``tasks.image_prompts.start``: a model whose positions
        follow its images has prefilled all but their last column into the returned cache)."""
        images = [image for job in jobs for image in job.payload.images]
        inputs = image_inputs(self.model, images) if images else {}
        ids, mask, embeds, cache = start(self.model, [job.payload.prompt for job in jobs], inputs, max_new_tokens)
        return ids, None if bool(mask.all()) else mask, embeds, cache
