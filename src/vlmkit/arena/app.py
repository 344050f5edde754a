"""``create_arena_app``: the FastAPI application of ``vlmkit arena``.

Routes: ``/`` (the page), ``POST /arena/battle`` (an image and a prompt in; the two anonymous answers out
as server-sent events), ``POST /arena/vote`` (the vote in; the two names out), ``/leaderboard`` (the
ratings as a page) and ``/healthz``. What a request may cost is ``vlmkit serve``'s rules, with its code:
the guard middleware (body size and pace), the image checks (count, header pixels, decoding shrunk
towards the models' input size), the text limit, the per-request deadline, errors in one JSON shape.

Events of a battle, one JSON object per ``data:`` line: ``{"battle": id}`` first, then
``{"side": "a", "text": ...}`` pieces of either answer as they come, ``{"side": "a", "done": true}``
when one ends (or ``{"side": ..., "error": ...}``), and ``{"ready": true}`` once both are complete and the
battle takes its vote. No event carries a model's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from vlmkit.arena.ratings import rate
from vlmkit.arena.state import SIDES, Arena, PendingBattle
from vlmkit.arena.tables import html_table
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import IMAGE_TOKEN, with_image
from vlmkit.serving.app import PAGE_POLICY
from vlmkit.serving.batching import Job
from vlmkit.serving.chat import ChatService, Event, Finished, Piece
from vlmkit.serving.errors import ApiError, install_handlers
from vlmkit.serving.images import decode_images
from vlmkit.serving.limits import GuardMiddleware
from vlmkit.serving.requests import check_text_size, min_side
from vlmkit.serving.state import Deadline, submit
from vlmkit.version import __version__

STATIC = Path(__file__).parent / "static"
LEADERBOARD_PAGE = STATIC / "leaderboard.html"  # its "<!-- table -->" is replaced by the table
LEADERBOARD_ROUNDS = 200  # bootstrap rounds per page view: a few tenths of a second for a handful of models
LOG = logging.getLogger("vlmkit.arena")
Winner = Literal["model_a", "model_b", "tie", "tie (bothbad)"]


class BattleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1)
    image: str | None = None  # a data: URL


class VoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    battle: str
    winner: Winner


def _sse(fields: dict[str, Any]) -> str:
    return f"data: {json.dumps(fields)}\n\n"


def _decode_side(services: list[ChatService]) -> int | None:
    """How far an image may shrink while decoding: enough for the model that needs the most pixels."""
    sides = [min_side(service) for service in services]
    return None if None in sides else max(side for side in sides if side is not None)


def create_arena_app(arena: Arena) -> FastAPI:
    """The arena's server; its models' workers start with the app and stop, with the vote store, after it."""
    limits = arena.limits

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        arena.start()
        try:
            yield
        finally:
            await asyncio.to_thread(arena.close)

    app = FastAPI(title="vlmkit arena", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    install_handlers(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        votes = await asyncio.to_thread(arena.votes.count)
        return {"status": "ok", "version": __version__, "models": len(arena.models), "votes": votes}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/leaderboard", include_in_schema=False)
    async def leaderboard() -> HTMLResponse:
        battles = await asyncio.to_thread(arena.votes.battles)
        table = html_table(await asyncio.to_thread(rate, battles, LEADERBOARD_ROUNDS)) if battles else ""
        body = table or '<p id="no-votes">No votes yet.</p>'
        text = LEADERBOARD_PAGE.read_text(encoding="utf-8").replace("<!-- table -->", body)
        return HTMLResponse(text, headers={"Content-Security-Policy": PAGE_POLICY})

    @app.post("/arena/battle")
    async def battle(body: BattleRequest) -> StreamingResponse:
        deadline = Deadline(limits.timeout_s)
        if IMAGE_TOKEN in body.prompt:
            raise ApiError(400, f"the prompt must not contain {IMAGE_TOKEN}; send the image as 'image'", param="prompt")
        check_text_size(len(body.prompt), limits, "prompt")
        services = list(arena.services.values())
        images = []
        if body.image is not None:
            images = await decode_images([body.image], ["image"], limits, deadline, _decode_side(services))
        turns = [{"role": "user", "content": with_image(body.prompt) if images else body.prompt}]
        pending, sides = arena.new_battle()
        jobs: list[Job[Any]] = []
        try:
            prompts = {}
            for side, service in sides.items():
                prompts[side] = await deadline.wait(asyncio.to_thread(service.encode, turns))
                if len(prompts[side]) >= service.max_positions:  # said without naming the model
                    raise ApiError(400, "the prompt is too long for one of the models", param="prompt")
            queue: asyncio.Queue[tuple[str, Event]] = asyncio.Queue()
            loop = asyncio.get_running_loop()
            config = GenerationConfig(max_new_tokens=limits.max_tokens_cap)
            for side, service in sides.items():
                emit = _emit(loop, queue, side)
                jobs.append(submit(lambda c=service, p=prompts[side], e=emit: c.submit(p, images, config, e)))
        except BaseException:
            arena.forget(pending)
            for job in jobs:
                job.cancel()
            raise
        return StreamingResponse(
            _events(arena, pending, queue, deadline, jobs),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/arena/vote")
    async def vote(body: VoteRequest) -> dict[str, Any]:
        return await asyncio.to_thread(arena.vote, body.battle, body.winner)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(GuardMiddleware, limits=limits, protected=())
    return app


def _emit(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[tuple[str, Event]], side: str) -> Any:
    """A worker's callback that hands its events, labelled by side, to the event loop."""

    def emit(event: Event) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(queue.put_nowait, (side, event))

    return emit


async def _events(
    arena: Arena, battle: PendingBattle, queue: asyncio.Queue[tuple[str, Event]], deadline: Deadline, jobs: list[Any]
) -> AsyncIterator[str]:
    """The battle's events until both answers end. A client that leaves closes this generator, which
    cancels both jobs (the models stop after their current token)."""
    try:
        yield _sse({"battle": battle.id})
        running = set(SIDES)
        while running:
            try:
                side, event = await asyncio.wait_for(queue.get(), max(deadline.left(), 0.0))
            except asyncio.TimeoutError:
                yield _sse({"error": deadline.expired().message})
                return
            if isinstance(event, Piece):
                yield _sse({"side": side, "text": event.text})
                continue
            running.discard(side)
            if isinstance(event, Finished):
                arena.finished(battle, side)
                yield _sse({"side": side, "done": True, "reason": event.reason})
            else:  # the model failed; its error may name it, so the page learns only that it failed
                LOG.error("battle %s: model %s failed: %r", battle.id, battle.models[side], event.error)
                yield _sse({"side": side, "error": "this answer failed"})
        if battle.done == set(SIDES):
            yield _sse({"ready": True})
    finally:
        for job in jobs:
            job.cancel()
