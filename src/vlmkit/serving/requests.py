"""What every route does with a request before and while its model works: measure its text, know how
far its images may shrink, and notice when its client leaves.

A request's text is counted in characters against ``max_text_chars`` before anything is tokenized,
since tokenizing costs time in proportion to it. A route waiting on a worker also waits on the client's
connection: a client that leaves makes the route cancel its job (the model stops after the current
token) rather than computing an answer nobody will read.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from fastapi import Request

from vlmkit.serving.errors import ApiError
from vlmkit.serving.images import decode_side
from vlmkit.serving.limits import ServerLimits
from vlmkit.serving.state import Deadline

T = TypeVar("T")


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


def check_text_size(chars: int, limits: ServerLimits, param: str) -> None:
    """400 when a request's text exceeds ``max_text_chars``: checked before anything is tokenized."""
    if chars > limits.max_text_chars:
        raise ApiError(
            400,
            f"the request holds {chars} characters of text; this server takes at most {limits.max_text_chars}",
            param=param,
            code="text_too_long",
        )


def min_side(service: Any) -> int | None:
    """How far the service's images may be shrunk while decoding (see ``images.decode_side``)."""
    return decode_side(getattr(service.model, "image_processor", None))


async def disconnected(request: Request) -> None:
    """Returns once the client has closed the connection. Call after the body is read: the next message
    the server hands over is then ``http.disconnect`` (when the client leaves or the response is done)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def next_event(events: asyncio.Queue[T], deadline: Deadline, gone: asyncio.Future[None]) -> T:
    """The next item of ``events`` within the deadline (else 504), unless the client leaves first
    (``ClientGone``)."""
    getter = asyncio.ensure_future(events.get())
    done, _ = await asyncio.wait({getter, gone}, timeout=max(deadline.left(), 0.0), return_when="FIRST_COMPLETED")
    if getter in done:
        return getter.result()
    getter.cancel()
    if gone in done:
        raise ClientGone
    raise deadline.expired()
