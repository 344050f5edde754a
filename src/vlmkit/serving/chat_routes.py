"""``/v1/chat/completions``, OpenAI-compatible, plain and streamed (SSE).

Bodies follow OpenAI's API closely enough that its official client works unchanged. Departures:
``temperature`` defaults to 0 (greedy), the deterministic choice for small task-trained models;
``max_tokens`` above the server's cap is refused rather than silently lowered; images come as
``data:`` URLs (or ``file://`` inside the allowed folder), never fetched from the web.

Content parts are normalised, so the answer never depends on their order: a user message's
``image_url`` parts become ``<image>`` placeholders that go first, each on its own line and in the
order the images came, then its text parts, joined by newlines. One image and one text part in
either order give ``<image>\\ntext``, the prompt ``vlmkit ask`` builds (``processing.chat.with_image``)
and the one the models were trained on. A ``video_url`` part (a vlmkit extension, ``serving.video``) becomes
its sampled frames; a reply that writes location tokens or a moment also carries them parsed on its message
(``objects``, ``moment``), and in a stream on the last chunk's delta.

Every request is measured before it costs anything: its text in characters (``max_text_chars``), its
images by count and header pixels; then it is admitted to its worker (503 when the queue is full),
and only then tokenized and decoded, on worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from vlmkit.errors import InputError
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import IMAGE_TOKEN
from vlmkit.serving.chat import ChatService, Event, Failed, Finished, Piece
from vlmkit.serving.errors import ApiError
from vlmkit.serving.images import check_image_count, decode_images
from vlmkit.serving.limits import ServerLimits
from vlmkit.serving.openai_routes import state_of, unknown_model
from vlmkit.serving.openai_schema import ChatRequest, Message, TextPart, VideoPart
from vlmkit.serving.requests import ClientGone, check_text_size, disconnected, min_side, next_event
from vlmkit.serving.state import Deadline, submit
from vlmkit.serving.video import ClipRequest, clip_request, reply_fields, with_clip

MAX_STOP_STRINGS = 4
MIN_TEMPERATURE = 1e-6  # below it logits / temperature overflows to inf; 0 is greedy


router = APIRouter()


def _unsupported(body: ChatRequest) -> None:
    if body.n not in (None, 1):
        raise ApiError(
            400,
            f"n={body.n} is not supported; this server returns exactly one choice (n=1)",
            param="n",
            code="unsupported_value",
        )
    if body.tools:
        raise ApiError(400, "tools are not supported by this server", param="tools", code="unsupported_value")
    if body.logprobs:
        raise ApiError(400, "logprobs are not supported by this server", param="logprobs", code="unsupported_value")
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(body, name) not in (None, 0):
            raise ApiError(
                400, f"{name} is not supported by this server (only 0)", param=name, code="unsupported_value"
            )


def generation_config(body: ChatRequest, limits: ServerLimits) -> GenerationConfig:
    asked = body.max_completion_tokens or body.max_tokens
    param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
    if asked is not None and asked > limits.max_tokens_cap:
        raise ApiError(400, f"{param}={asked} exceeds this server's cap of {limits.max_tokens_cap} tokens", param=param)
    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stops) > MAX_STOP_STRINGS or any(not s for s in stops):
        raise ApiError(400, f"stop: give at most {MAX_STOP_STRINGS} non-empty strings", param="stop")
    temperature = body.temperature or 0.0
    if 0 < temperature < MIN_TEMPERATURE:
        raise ApiError(400, f"temperature must be 0 (greedy) or at least {MIN_TEMPERATURE:g}", param="temperature")
    return GenerationConfig(
        max_new_tokens=asked or limits.max_tokens_cap,
        temperature=temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        seed=body.seed,
        stop=tuple(stops),
    )


@dataclass
class Conversation:
    """OpenAI messages as vlmkit turns with ``<image>`` placeholders, and their images' URLs, undecoded."""

    turns: list[dict[str, str]]
    urls: list[str]
    params: list[str]  # where each image came from, for errors
    chars: int  # characters of text in all the turns
    video: ClipRequest | None = None  # at most one clip (``serving.video``); its frames replace images


def conversation(messages: Sequence[Message], service: ChatService) -> Conversation:
    """Check and gather the messages (cheap: nothing is tokenized or decoded here)."""
    found = Conversation([], [], [], 0)
    for i, message in enumerate(messages):
        role = "system" if message.role == "developer" else message.role
        if message.content is None:
            raise ApiError(400, f"messages[{i}].content is missing", param=f"messages[{i}].content")
        parts = [TextPart(type="text", text=message.content)] if isinstance(message.content, str) else message.content
        images: list[str] = []  # placeholders first, whatever the parts' order (see the module docstring)
        pieces: list[str] = []
        for j, part in enumerate(parts):
            param = f"messages[{i}].content" + ("" if isinstance(message.content, str) else f"[{j}]")
            if isinstance(part, TextPart):
                if IMAGE_TOKEN in part.text:
                    raise ApiError(
                        400, f"text must not contain {IMAGE_TOKEN}; send images as image_url parts", param=param
                    )
                pieces.append(part.text)
                found.chars += len(part.text)
                continue
            if role != "user":
                raise ApiError(400, "images are accepted in user messages only", param=param)
            if not service.takes_images:
                raise ApiError(400, f"the model {service.model_id!r} is text-only; it takes no images", param=param)
            if isinstance(part, VideoPart):
                found.video = clip_request(part, len(found.turns), param, found.video)
                continue
            found.urls.append(part.image_url.url)
            found.params.append(f"{param}.image_url.url")
            images.append(IMAGE_TOKEN)
        found.turns.append({"role": role, "content": "\n".join([*images, *pieces])})
    if found.video is not None and found.urls:
        raise ApiError(400, "send a video or images in one request, not both", param=found.video.param)
    return found


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
    asked = conversation(body.messages, service)
    check_text_size(asked.chars + sum(len(stop) for stop in config.stop), state.limits, "messages")
    check_image_count(len(asked.urls), state.limits, "messages")
    with state.admit(service.batcher):
        video = asked.video
        clip = await with_clip(asked.turns, video, state.limits, deadline, min_side(service)) if video else None
        images = await decode_images(asked.urls, asked.params, state.limits, deadline, min_side(service))
        images = clip.images if clip else images
        prompt = await deadline.wait(asyncio.to_thread(service.encode, asked.turns, images))
        if len(prompt) >= service.max_positions:
            raise ApiError(
                400,
                f"the messages take {len(prompt)} tokens; this model's context holds {service.max_positions} "
                "including the answer",
                param="messages",
                code="context_length_exceeded",
            )
        boxes_on = asked.urls[-1] if asked.urls else None  # the image a reply's boxes are about
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()

        def emit(event: Event) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(events.put_nowait, event)

        job = submit(lambda: service.submit(prompt, images, config, emit))
    gone = asyncio.ensure_future(disconnected(request))
    streaming = False
    try:
        first = await next_event(events, deadline, gone)  # before any byte is sent: errors keep their status
        if isinstance(first, Failed):
            _raise_failure(first)
        extras = lambda text: reply_fields(request.app.state.grounding, boxes_on, state.limits, clip, text)  # noqa: E731
        reply = Reply(_completion_id(), service.model_id, len(prompt), extras)
        if not body.stream:
            return await reply.collect(first, events, deadline, gone)
        usage = body.stream_options is not None and body.stream_options.include_usage
        streaming = True  # from here the response watches the client, and cancels the job when it leaves
        return StreamingResponse(
            reply.stream(first, events, deadline, job.cancel, usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    except ClientGone:
        raise ApiError(499, "the client closed the connection", code="client_closed") from None
    finally:
        gone.cancel()
        if not streaming:
            job.cancel()


class Reply:
    """One completion's id and bookkeeping, as a JSON body or as server-sent events."""

    def __init__(
        self, completion_id: str, model_id: str, prompt_tokens: int, extras: Callable[[str], dict[str, Any]]
    ) -> None:
        self.id = completion_id
        self.extras = extras  # fields of the whole answer besides its text: objects, a moment
        self.model = model_id
        self.created = int(time.time())
        self.prompt_tokens = prompt_tokens

    def usage(self, completion_tokens: int) -> dict[str, int]:
        total = self.prompt_tokens + completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": total}

    async def collect(
        self, event: Event, events: asyncio.Queue[Event], deadline: Deadline, gone: asyncio.Future[None]
    ) -> dict[str, Any]:
        """The whole answer as one body; ``ClientGone`` if the client leaves before it is done."""
        text: list[str] = []
        while not isinstance(event, Finished):
            if isinstance(event, Failed):
                _raise_failure(event)
            text.append(event.text)  # type: ignore[union-attr]
            event = await next_event(events, deadline, gone)
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(text), **self.extras("".join(text))},
                    "finish_reason": event.reason,
                    "logprobs": None,
                }
            ],
            "usage": self.usage(event.completion_tokens),
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return self._sse({"choices": [choice]})

    def _sse(self, fields: dict[str, Any]) -> str:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        return f"data: {json.dumps({**body, **fields})}\n\n"

    async def stream(
        self, event: Event, events: asyncio.Queue[Event], deadline: Deadline, cancel: Any, include_usage: bool
    ) -> AsyncIterator[str]:
        """SSE chunks: the role, then text deltas, then the finish reason with the answer's extras (and usage),
        then ``[DONE]``.

        A client that disconnects closes this generator; ``cancel`` then stops its row of the batch.
        """
        text: list[str] = []
        try:
            yield self.chunk({"role": "assistant", "content": ""})
            while True:
                if isinstance(event, Piece):
                    text.append(event.text)
                    yield self.chunk({"content": event.text})
                elif isinstance(event, Finished):
                    yield self.chunk(self.extras("".join(text)), event.reason)
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
