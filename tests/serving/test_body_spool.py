"""Where the guard keeps a request body while it arrives, and that nothing keeps it afterwards.

A body past ``SPOOL_BYTES`` waits in a temporary file, not in the heap, and a refused body (413, 503,
408) is freed when its answer is sent, not at the cyclic collector's next full collection: with many
such bodies held at once, either leak showed as RSS that grew with every round of stalled clients.
The guard is driven directly as ASGI here so that its heap can be measured with tracemalloc.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import tempfile
import tracemalloc
from collections.abc import Iterator

import pytest

from vlmkit.serving.limits import SPOOL_BYTES, GuardMiddleware, ServerLimits

MIB = 1024 * 1024
SCOPE = {"type": "http", "headers": [], "path": "/v1/embeddings"}
TIGHT = {"max_body_bytes": 4 * MIB, "max_buffered_bytes": 4 * MIB, "body_timeout_s": 0.3}


class Client:
    """An ASGI client sending ``body`` in chunks of 64 KiB (each a new object, as a server makes
    them), then stalling for ``stall_s`` if ``complete`` is False; keeps what the guard answers."""

    def __init__(self, body: bytes, complete: bool = True, stall_s: float = 30.0) -> None:
        self.body, self.offset = body, 0
        self.complete, self.stall_s = complete, stall_s
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        if self.offset >= len(self.body):
            await asyncio.sleep(self.stall_s)
            return {"type": "http.disconnect"}
        chunk = self.body[self.offset : self.offset + 65536]
        self.offset += len(chunk)
        more = self.offset < len(self.body) or not self.complete
        return {"type": "http.request", "body": chunk, "more_body": more}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    def status(self) -> int:
        return self.sent[0]["status"]

    def error_code(self) -> str:
        return json.loads(self.sent[1]["body"])["error"]["code"]


async def echo_digest(scope, receive, send) -> None:
    """An application answering the SHA-256 of the body it was handed."""
    message = await receive()
    assert message["more_body"] is False
    digest = hashlib.sha256(message["body"]).hexdigest().encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": digest})


def run(guard: GuardMiddleware, *clients: Client) -> None:
    async def all_of_them() -> None:
        await asyncio.gather(*(guard(SCOPE, client.receive, client.send) for client in clients))

    asyncio.run(all_of_them())


@pytest.fixture
def traced() -> Iterator[None]:
    """tracemalloc on and the cyclic collector off, so memory kept alive only by a cycle stays counted."""
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()
        gc.enable()


@pytest.mark.parametrize("size", [1000, SPOOL_BYTES - 1, SPOOL_BYTES + 1, 3 * MIB + 17])
def test_bodies_reach_the_application_byte_for_byte(size):
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    client = Client(body)
    run(GuardMiddleware(echo_digest, ServerLimits(), ()), client)
    assert client.status() == 200 and client.sent[1]["body"] == hashlib.sha256(body).hexdigest().encode()


def test_a_large_body_waits_on_disk_while_it_arrives(traced):
    guard = GuardMiddleware(echo_digest, ServerLimits(body_timeout_s=0.5), ())
    client = Client(b"x" * (6 * MIB), complete=False)
    start = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    run(guard, client)
    assert client.status() == 408 and client.error_code() == "body_timeout"
    assert tracemalloc.get_traced_memory()[1] - start < 2 * SPOOL_BYTES  # 6 MiB were held, on disk


@pytest.mark.parametrize(
    ("limits", "size", "status", "code"),
    [(TIGHT, 5 * MIB, 413, "body_too_large"), (TIGHT, 3 * MIB, 408, "body_timeout")],
)
def test_a_refused_body_is_freed_with_its_answer(traced, limits, size, status, code):
    guard = GuardMiddleware(echo_digest, ServerLimits(**limits), ())
    client = Client(b"y" * size, complete=False)
    held_before = tracemalloc.get_traced_memory()[0]
    run(guard, client)
    assert client.status() == status and client.error_code() == code
    assert tracemalloc.get_traced_memory()[0] - held_before < MIB  # not waiting for a full collection
    assert guard.buffered == 0


def test_bodies_over_the_shared_budget_are_freed_with_their_503(traced):
    guard = GuardMiddleware(echo_digest, ServerLimits(**TIGHT), ())
    clients = [Client(b"z" * (3 * MIB), complete=False) for _ in range(3)]
    held_before = tracemalloc.get_traced_memory()[0]
    run(guard, *clients)
    assert sorted(client.error_code() for client in clients).count("server_busy") >= 2
    assert all((b"retry-after", b"1") in client.sent[0]["headers"] for client in clients if client.status() == 503)
    assert tracemalloc.get_traced_memory()[0] - held_before < MIB
    assert guard.buffered == 0


def test_a_temporary_folder_that_cannot_hold_bodies_gives_503(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_folder))
    small, large = Client(b"s" * 1000), Client(b"l" * (SPOOL_BYTES + 65536))
    run(GuardMiddleware(echo_digest, ServerLimits(), ()), small, large)
    assert small.status() == 200  # small bodies never touch the disk
    assert large.status() == 503 and large.error_code() == "server_busy"
    assert b"cannot store request bodies" in large.sent[1]["body"]
