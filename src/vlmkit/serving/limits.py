"""What one request may cost, and the checks that run before any route: body size and API key.

The body limit is enforced as raw ASGI middleware rather than in a route because a route only runs
after FastAPI has read and parsed the whole body: a declared ``Content-Length`` over the limit is
refused before a byte is read, and a body without one (chunked) is refused as soon as it grows past
the limit while being read.
"""

from __future__ import annotations

import hmac
import json
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

    def __post_init__(self) -> None:
        for name in ("max_batch", "queue", "max_tokens_cap", "max_body_bytes", "max_image_pixels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve: {name} must be >= 1, got {getattr(self, name)}")
        if self.batch_wait_ms < 0 or self.timeout_s <= 0:
            raise ConfigError("serve: batch_wait_ms must be >= 0 and timeout_s > 0")
        if self.api_key is not None and not self.api_key:
            raise ConfigError("serve: the API key must not be empty")
        if self.allow_local_folder is not None:
            folder = Path(self.allow_local_folder).resolve()
            if not folder.is_dir():
                raise ConfigError(f"serve: --allow-local-folder {self.allow_local_folder} is not a folder")
            object.__setattr__(self, "allow_local_folder", folder)


def key_matches(header: str | None, api_key: str) -> bool:
    """Whether an ``Authorization`` header carries ``api_key``, compared in constant time."""
    scheme, _, token = (header or "").partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else ""
    return hmac.compare_digest(given.encode(), api_key.encode())


async def _send_error(send: Send, error: ApiError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Refuses requests that are unauthorised or too large before the application sees them.

    Paths under ``protected`` need the API key (when one is set). The body is read here, bounded,
    and replayed to the application, so no route ever holds more than ``max_body_bytes``.
    """

    def __init__(self, app: ASGIApp, limits: ServerLimits, protected: Iterable[str]) -> None:
        self.app = app
        self.limits = limits
        self.protected = tuple(protected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = self.limits.api_key
        protected = key is not None and scope["path"].startswith(self.protected)
        if protected and not key_matches(headers.get("authorization"), key):  # type: ignore[arg-type]
            await _send_error(send, ApiError(401, "incorrect or missing API key", code="invalid_api_key"))
            return
        too_large = ApiError(
            413, f"request body exceeds the limit of {self.limits.max_body_bytes} bytes", code="body_too_large"
        )
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            await _send_error(send, too_large)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before sending it all
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limits.max_body_bytes:
                await _send_error(send, too_large)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


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
