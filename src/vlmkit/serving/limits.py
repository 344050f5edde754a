"""What one request may cost, and the checks that run before any route: API key, body size and pace.

The body limits are enforced as raw ASGI middleware rather than in a route because a route only runs
after FastAPI has read and parsed the whole body: a declared ``Content-Length`` over the limit is
refused before a byte is read, and a body without one (chunked) is refused as soon as it grows past
the limit while being read. A body must arrive within ``body_timeout_s`` (408 past it, so a client
trickling bytes cannot hold a request open), and the bodies of all requests in flight together may
not exceed ``max_buffered_bytes`` (503 past it), so concurrency cannot multiply the body limit
without bound.

A body is held in memory only up to ``SPOOL_BYTES``; past that it goes to an unnamed temporary file
(in ``tempfile.gettempdir()``, removed by the kernel when closed) until it is complete, so a client
that sends most of a large body and stalls costs the server disk pages, not heap. Held in the heap,
the budget's worth of stalled bodies left glibc's heap fragmented and RSS higher after every round
of such clients (docs/results.md, Reliability). Errors found while reading are returned, not raised:
an exception raised through ``asyncio.wait_for`` forms a reference cycle (exception, traceback,
``wait_for``'s frame, its task, the exception) that kept the refused body alive until the cyclic
collector's rare full collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vlmkit.errors import ConfigError
from vlmkit.serving.errors import ApiError


@dataclass(frozen=True)
class ServerLimits:
    """Knobs of ``vlmkit serve``; each bounds memory, time or what the server may touch.

    Attributes:
        max_batch: most inputs (texts, images, chat prompts) one model call takes.
        batch_wait_ms: how long a worker waits for more requests to fill a batch.
        queue: most requests waiting per model; beyond it requests get 503 with Retry-After.
        max_tokens_cap: largest ``max_tokens`` a chat request may ask for (also the default).
        timeout_s: per-request limit from arrival to the last byte of the answer.
        max_body_bytes: largest request body.
        max_image_pixels: largest width * height of a decoded image (checked from the header).
        api_key: when set, ``/v1/*`` and ``/metrics`` need ``Authorization: Bearer <key>``.
        allow_local_folder: the one folder whose files ``file://`` image URLs may name.
        max_text_chars: most characters of text one request may hold (prompts, inputs, stop strings,
            labels times templates), checked before anything is tokenized.
        max_images: most images one request may hold.
        max_request_pixels: most pixels (width * height, from the headers) of all of a request's images.
        body_timeout_s: time a client has to send the whole body once its headers are in (408 past it).
        max_buffered_bytes: most request-body bytes held at once by all requests in flight (503 past it),
            in memory up to ``SPOOL_BYTES`` per request and in a temporary file past that.
        max_video_seconds: longest clip a chat request may send (400 past it, from the clip's header).
        video_frames: frames sampled from a clip when its part does not say (at most ``max_images``).
    """

    max_batch: int = 16
    batch_wait_ms: float = 5.0
    queue: int = 64
    max_tokens_cap: int = 512
    timeout_s: float = 60.0
    max_body_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 16_000_000
    api_key: str | None = None
    allow_local_folder: Path | None = None
    max_text_chars: int = 1_000_000
    max_images: int = 32
    max_request_pixels: int = 64_000_000
    body_timeout_s: float = 30.0
    max_buffered_bytes: int = 128 * 1024 * 1024  # disk pages mostly: a body past SPOOL_BYTES waits in a file
    max_video_seconds: float = 300.0
    video_frames: int = 8

    def __post_init__(self) -> None:
        counts = ("max_batch", "queue", "max_tokens_cap", "max_body_bytes", "max_image_pixels", "max_text_chars")
        for name in (*counts, "max_images", "max_request_pixels", "max_buffered_bytes", "video_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve: {name} must be >= 1, got {getattr(self, name)}")
        if self.batch_wait_ms < 0 or self.timeout_s <= 0 or self.body_timeout_s <= 0 or self.max_video_seconds <= 0:
            raise ConfigError("serve: batch_wait_ms must be >= 0, timeout_s, body_timeout_s and max_video_seconds > 0")
        if self.max_buffered_bytes < self.max_body_bytes:
            raise ConfigError("serve: max_buffered_bytes must be at least max_body_bytes (one largest body)")
        if self.api_key is not None and not self.api_key:
            raise ConfigError("serve: the API key must not be empty")
        if self.api_key is not None and any(c.isspace() or not c.isprintable() for c in self.api_key):
            raise ConfigError("serve: the API key must not contain spaces or control characters")
        if self.allow_local_folder is not None:
            folder = Path(self.allow_local_folder).resolve()
            if not folder.is_dir():
                raise ConfigError(f"serve: --allow-local-folder {self.allow_local_folder} is not a folder")
            object.__setattr__(self, "allow_local_folder", folder)


def key_matches(header: bytes | None, api_key: str) -> bool:
    """Whether an ``Authorization`` header (its raw bytes) carries ``api_key``, compared in constant time.

    Bytes are compared with bytes: HTTP gives header values no encoding, so a key beyond ASCII matches
    when sent as UTF-8 (curl, most clients) or, where every character fits, as Latin-1 (browsers).
    """
    scheme, _, token = (header or b"").partition(b" ")
    given = token.strip() if scheme.lower() == b"bearer" else b""
    encodings = {api_key.encode("utf-8")}
    with contextlib.suppress(UnicodeEncodeError):
        encodings.add(api_key.encode("latin-1"))
    return any([hmac.compare_digest(given, encoded) for encoded in encodings])  # a list: no short cut


async def _send_error(send: Send, error: ApiError, *, close: bool = False) -> None:
    """The error as a response; ``close`` also ends the connection (the client may still be sending a body)."""
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(b"connection", b"close")] if close else []
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


SPOOL_BYTES = 1024 * 1024  # a body's bytes held in memory while it arrives; the rest wait in a temporary file


class GuardMiddleware:
    """Refuses requests that are unauthorised, too large or too slow before the application sees them.

    Paths under ``protected`` need the API key (when one is set). The body is read here, bounded in
    size and time, and replayed to the application, so no route ever holds more than ``max_body_bytes``
    and all routes together no more than ``max_buffered_bytes``; a request's share is released when
    its response is done.
    """

    def __init__(self, app: ASGIApp, limits: ServerLimits, protected: Iterable[str]) -> None:
        self.app = app
        self.limits = limits
        self.protected = tuple(protected)
        self.buffered = 0  # body bytes held by the requests in flight (the event loop's thread only)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        key = self.limits.api_key
        protected = key is not None and scope["path"].startswith(self.protected)
        if protected and not key_matches(headers.get(b"authorization"), key):  # type: ignore[arg-type]
            await _send_error(send, ApiError(401, "incorrect or missing API key", code="invalid_api_key"))
            return
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            await _send_error(send, self._too_large(), close=True)
            return
        held = [0]  # bytes this request counts in self.buffered, updated as chunks arrive
        try:
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
                try:
                    body = await asyncio.wait_for(self._read(receive, spool, held), self.limits.body_timeout_s)
                except asyncio.TimeoutError:
                    seconds = f"{self.limits.body_timeout_s:g}"
                    body = ApiError(408, f"the request body did not arrive within {seconds} s", code="body_timeout")
            if isinstance(body, ApiError):
                await _send_error(send, body, close=True)
            elif body is not None:
                await self.app(scope, _replay(body, receive), send)
        finally:
            self.buffered -= held[0]

    async def _read(
        self, receive: Receive, spool: tempfile.SpooledTemporaryFile[bytes], held: list[int]
    ) -> bytes | ApiError | None:
        """The whole body, counted against both budgets as it arrives and kept in ``spool`` until complete;
        the error to answer when a budget is exceeded; None if the client left."""
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before sending it all
                return None
            chunk = message.get("body", b"")
            held[0] += len(chunk)
            self.buffered += len(chunk)
            if held[0] > self.limits.max_body_bytes:
                return self._too_large()
            if self.buffered > self.limits.max_buffered_bytes:
                return ApiError(
                    503, "the server is holding too many request bodies; retry shortly", code="server_busy",
                    headers={"Retry-After": "1"},
                )  # fmt: skip
            try:
                spool.write(chunk)
            except OSError as error:  # the temporary folder is full or unwritable
                return ApiError(
                    503, f"the server cannot store request bodies ({error.strerror}); retry shortly",
                    code="server_busy", headers={"Retry-After": "1"},
                )  # fmt: skip
            if not message.get("more_body", False):
                spool.seek(0)
                return spool.read()

    def _too_large(self) -> ApiError:
        return ApiError(
            413, f"request body exceeds the limit of {self.limits.max_body_bytes} bytes", code="body_too_large"
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over the buffered body once, then the client's later messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
