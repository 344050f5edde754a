"""OpenAI-compatible routes: ``/v1/models``, ``/v1/chat/completions`` (plain and SSE), ``/v1/embeddings``.

Bodies follow OpenAI's API closely enough that its official client works unchanged. Departures:
``temperature`` defaults to 0 (greedy), the deterministic choice for small task-trained models;
``max_tokens`` above the server's cap is refused rather than silently lowered; images come as
``data:`` URLs (or ``file://`` inside the allowed folder), never fetched from the web. Embeddings
take images too, as a vlmkit extension: ``"input_type": "image"`` with image URLs as inputs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from PIL import Image

from vlmkit.errors import InputError
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import IMAGE_TOKEN
from vlmkit.serving.chat import ChatService, Event, Failed, Finished, Piece
from vlmkit.serving.encoder import EncoderService
from vlmkit.serving.errors import ApiError
from vlmkit.serving.images import fetch_image
from vlmkit.serving.limits import ServerLimits
from vlmkit.serving.openai_schema import ChatRequest, EmbeddingRequest, Message, TextPart
from vlmkit.serving.state import Deadline, ServerState, result, submit

MAX_EMBEDDING_INPUTS = 2048
MAX_STOP_STRINGS = 4

router = APIRouter()


def state_of(request: Request) -> ServerState:
    return request.app.state.vlmkit


def unknown_model(name: str, served: Sequence[str], what: str) -> ApiError:
    offered = ", ".join(repr(s) for s in served) or "none"
    return ApiError(
        404, f"the model {name!r} is not served for {what} (served: {offered})", param="model", code="model_not_found"
    )


def model_card(model_id: str, state: ServerState) -> dict[str, Any]:
    """OpenAI's model object, plus ``capabilities`` (a vlmkit extension: what the model serves here)."""
    uses = state.capabilities()[model_id]
    return {"id": model_id, "object": "model", "created": state.started, "owned_by": "vlmkit", "capabilities": uses}


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    state = state_of(request)
    return {"object": "list", "data": [model_card(i, state) for i in state.capabilities()]}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    state = state_of(request)
    if model_id not in state.capabilities():
        raise unknown_model(model_id, list(state.capabilities()), "any endpoint")
    return model_card(model_id, state)


# ------------------------------------------------------------------------------------------ chat


def _unsupported(body: ChatRequest) -> None:
    if body.n not in (None, 1):
        raise ApiError(400, f"n={body.n} is not supported; this server returns exactly one choice (n=1)", param="n")
    if body.tools:
        raise ApiError(400, "tools are not supported by this server", param="tools")
    if body.logprobs:
        raise ApiError(400, "logprobs are not supported by this server", param="logprobs")
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(body, name) not in (None, 0):
            raise ApiError(400, f"{name} is not supported by this server (only 0)", param=name)


def generation_config(body: ChatRequest, limits: ServerLimits) -> GenerationConfig:
    asked = body.max_completion_tokens or body.max_tokens
    param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
    if asked is not None and asked > limits.max_tokens_cap:
        raise ApiError(400, f"{param}={asked} exceeds this server's cap of {limits.max_tokens_cap} tokens", param=param)
    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stops) > MAX_STOP_STRINGS or any(not s for s in stops):
        raise ApiError(400, f"stop: give at most {MAX_STOP_STRINGS} non-empty strings", param="stop")
    return GenerationConfig(
        max_new_tokens=asked or limits.max_tokens_cap,
        temperature=body.temperature or 0.0,
        top_p=1.0 if body.top_p is None else body.top_p,
        seed=body.seed,
        stop=tuple(stops),
    )


def conversation(
    messages: Sequence[Message], service: ChatService, limits: ServerLimits
) -> tuple[list[dict[str, str]], list[Image.Image]]:
    """OpenAI messages -> vlmkit turns with ``<image>`` placeholders, and the decoded images in order."""
    turns: list[dict[str, str]] = []
    images: list[Image.Image] = []
    for i, message in enumerate(messages):
        role = "system" if message.role == "developer" else message.role
        if message.content is None:
            raise ApiError(400, f"messages[{i}].content is missing", param=f"messages[{i}].content")
        parts = [TextPart(type="text", text=message.content)] if isinstance(message.content, str) else message.content
        pieces: list[str] = []
        for j, part in enumerate(parts):
            param = f"messages[{i}].content" + ("" if isinstance(message.content, str) else f"[{j}]")
            if isinstance(part, TextPart):
                if IMAGE_TOKEN in part.text:
                    raise ApiError(
                        400, f"text must not contain {IMAGE_TOKEN}; send images as image_url parts", param=param
                    )
                pieces.append(part.text)
                continue
            if role != "user":
                raise ApiError(400, "images are accepted in user messages only", param=param)
            if not service.takes_images:
                raise ApiError(400, f"the model {service.model_id!r} is text-only; it takes no images", param=param)
            images.append(
                fetch_image(
                    part.image_url.url,
                    max_pixels=limits.max_image_pixels,
                    folder=limits.allow_local_folder,
                    param=f"{param}.image_url.url",
                )
            )
            pieces.append(IMAGE_TOKEN)
        turns.append({"role": role, "content": "\n".join(pieces)})
    return turns, images


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _raise_failure(event: Failed) -> None:
    if isinstance(event.error, InputError):
        raise ApiError(400, str(event.error))
    raise ApiError(500, f"generation failed: {type(event.error).__name__}: {event.error}", code="server_error")


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(body: ChatRequest, request: Request) -> dict[str, Any] | StreamingResponse:
    state = state_of(request)
    deadline = Deadline(state.limits.timeout_s)
    service = state.chat
    if service is None or body.model != service.model_id:
        raise unknown_model(body.model, [service.model_id] if service else [], "chat completions")
    _unsupported(body)
    config = generation_config(body, state.limits)
    turns, images = await deadline.wait(asyncio.to_thread(conversation, body.messages, service, state.limits))
    prompt = service.encode(turns)
    if len(prompt) >= service.max_positions:
        raise ApiError(
            400,
            f"the messages take {len(prompt)} tokens; this model's context holds {service.max_positions} "
            "including the answer",
            param="messages",
            code="context_length_exceeded",
        )
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Event] = asyncio.Queue()

    def emit(event: Event) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(events.put_nowait, event)

    job = submit(lambda: service.submit(prompt, images, config, emit))
    try:
        first = await deadline.wait(events.get())  # before any byte is sent: errors keep their status
        if isinstance(first, Failed):
            _raise_failure(first)
    except BaseException:
        job.cancel()
        raise
    reply = Reply(_completion_id(), service.model_id, len(prompt))
    if body.stream:
        usage = body.stream_options is not None and body.stream_options.include_usage
        return StreamingResponse(
            reply.stream(first, events, deadline, job.cancel, usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    try:
        return await reply.collect(first, events, deadline)
    finally:
        job.cancel()


class Reply:
    """One completion's id and bookkeeping, as a JSON body or as server-sent events."""

    def __init__(self, completion_id: str, model_id: str, prompt_tokens: int) -> None:
        self.id = completion_id
        self.model = model_id
        self.created = int(time.time())
        self.prompt_tokens = prompt_tokens

    def usage(self, completion_tokens: int) -> dict[str, int]:
        total = self.prompt_tokens + completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": total}

    async def collect(self, event: Event, events: asyncio.Queue[Event], deadline: Deadline) -> dict[str, Any]:
        text: list[str] = []
        while not isinstance(event, Finished):
            if isinstance(event, Failed):
                _raise_failure(event)
            text.append(event.text)  # type: ignore[union-attr]
            event = await deadline.wait(events.get())
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(text)},
                    "finish_reason": event.reason,
                    "logprobs": None,
                }
            ],
            "usage": self.usage(event.completion_tokens),
        }

    def chunk(self, delta: dict[str, str], finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return self._sse({"choices": [choice]})

    def _sse(self, fields: dict[str, Any]) -> str:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        return f"data: {json.dumps({**body, **fields})}\n\n"

    async def stream(
        self, event: Event, events: asyncio.Queue[Event], deadline: Deadline, cancel: Any, include_usage: bool
    ) -> AsyncIterator[str]:
        """SSE chunks: the role, then text deltas, then the finish reason (and usage), then ``[DONE]``.

        A client that disconnects closes this generator; ``cancel`` then stops its row of the batch.
        """
        try:
            yield self.chunk({"role": "assistant", "content": ""})
            while True:
                if isinstance(event, Piece):
                    yield self.chunk({"content": event.text})
                elif isinstance(event, Finished):
                    yield self.chunk({}, event.reason)
                    if include_usage:
                        yield self._sse({"choices": [], "usage": self.usage(event.completion_tokens)})
                    break
                else:
                    error = event.error  # type: ignore[union-attr]
                    yield f"data: {json.dumps({'error': {'message': str(error), 'type': 'server_error'}})}\n\n"
                    break
                try:
                    event = await asyncio.wait_for(events.get(), max(deadline.left(), 0.0))
                except asyncio.TimeoutError:
                    yield f"data: {json.dumps(deadline.expired().body())}\n\n"
                    break
            yield "data: [DONE]\n\n"
        finally:
            cancel()


# ------------------------------------------------------------------------------------ embeddings


def embedding_inputs(body: EmbeddingRequest) -> list[str]:
    inputs = [body.input] if isinstance(body.input, str) else list(body.input)
    if not inputs:
        raise ApiError(400, "input must not be empty", param="input")
    if not all(isinstance(item, str) for item in inputs):
        raise ApiError(400, "token-id inputs are not supported; send strings", param="input")
    if len(inputs) > MAX_EMBEDDING_INPUTS:
        raise ApiError(400, f"at most {MAX_EMBEDDING_INPUTS} inputs per request, got {len(inputs)}", param="input")
    if any(not item for item in inputs):
        raise ApiError(400, "input strings must not be empty", param="input")
    return inputs  # type: ignore[return-value]


def encode_vector(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.astype(np.float32).tolist()


async def decode_images(
    urls: Sequence[str], params: Sequence[str], limits: ServerLimits, deadline: Deadline
) -> list[Image.Image]:
    """Decode image URLs off the event loop (``params`` name each in errors)."""

    def decode() -> list[Image.Image]:
        folder = limits.allow_local_folder
        return [
            fetch_image(url, max_pixels=limits.max_image_pixels, folder=folder, param=param)
            for url, param in zip(urls, params, strict=True)
        ]

    return await deadline.wait(asyncio.to_thread(decode))


async def embed(service: EncoderService, inputs: list[str] | list[Image.Image], deadline: Deadline) -> np.ndarray:
    """Vectors of texts or of decoded images, through the service's batcher."""
    if inputs and isinstance(inputs[0], Image.Image):
        job = submit(lambda: service.submit_images(inputs))  # type: ignore[arg-type]
    else:
        job = submit(lambda: service.submit_texts(inputs))  # type: ignore[arg-type]
    return (await result(job, deadline)).numpy()


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request) -> dict[str, Any]:
    state = state_of(request)
    deadline = Deadline(state.limits.timeout_s)
    service = state.encoder
    if service is None or body.model != service.model_id:
        raise unknown_model(body.model, [service.model_id] if service else [], "embeddings")
    if body.dimensions is not None and body.dimensions != service.dim:
        raise ApiError(400, f"dimensions must be {service.dim} for this model (no truncation)", param="dimensions")
    inputs = embedding_inputs(body)
    if body.input_type == "image":
        params = [f"input[{i}]" for i in range(len(inputs))] if isinstance(body.input, list) else ["input"]
        vectors = await embed(service, await decode_images(inputs, params, state.limits, deadline), deadline)
        tokens = 0
    else:
        vectors = await embed(service, inputs, deadline)
        tokens = service.count_tokens(inputs)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode_vector(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": service.model_id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
