"""A deadline uvicorn lacks: a connection must deliver each request's headers within ``seconds``.

uvicorn closes a keep-alive connection that stays silent past ``timeout_keep_alive``, but a client that
trickles a byte now and then, or opens a connection and sends nothing, holds it indefinitely; with
``limit_concurrency`` a few hundred such clients lock everyone else out. ``header_deadline_protocol``
is uvicorn's h11 protocol with one timer more: armed when a connection opens and after each response,
cancelled when a request's headers are complete; when it fires, the connection is closed. The body's
own deadline is ``ServerLimits.body_timeout_s`` (``limits.GuardMiddleware``).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers are not in within the deadline."""

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's headers are complete: its body has its own deadline
            self._disarm()

    def on_response_complete(self) -> None:
        self._arm()  # before the base class, which may start on a pipelined request at once
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def header_deadline_protocol(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to hand uvicorn as ``http=``, with a header deadline of ``seconds``."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": float(seconds)})
