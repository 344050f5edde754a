"""``create_app``: the FastAPI application of ``vlmkit serve``.

Layers, outermost first: metrics (counts everything, refusals included), the guard (API key, body
size, body deadline, the budget of buffered bodies), then the routes. Connection limits (how many,
header deadline, keep-alive) are uvicorn's, set by ``vlmkit serve`` (``serving.connections``). The
model workers start in the lifespan's startup and are drained in its shutdown, after uvicorn has
stopped accepting connections and let in-flight requests finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from vlmkit import __version__
from vlmkit.errors import ConfigError
from vlmkit.serving import chat_routes, grounding, imagine, openai_routes, video, vlmkit_routes
from vlmkit.serving.errors import install_handlers
from vlmkit.serving.limits import GuardMiddleware, ServerLimits
from vlmkit.serving.metrics import MetricsMiddleware
from vlmkit.serving.state import ServedModels, ServerState

STATIC = Path(__file__).parent / "static"
PROTECTED = ("/v1/", "/metrics")
ENDPOINTS = (
    "/",
    "/healthz",
    "/metrics",
    "/v1/models",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/classify",
    "/v1/search",
    "/v1/read",
    "/v1/detect",
    "/v1/segment",
    "/v1/images/generations",
)
# The page loads nothing from elsewhere; images and clips it shows are data: or blob: URLs.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'"
)


def create_app(models: ServedModels, limits: ServerLimits | None = None) -> FastAPI:
    """The server for ``models`` under ``limits``; at least an encoder, a chat model or a reader is needed."""
    if models.encoder is None and models.chat is None and models.read_engine is None and models.t2i is None:
        raise ConfigError(
            "serve: give a dual encoder (--model), a generative model (--vlm), a text-to-image model (--t2i) or --read"
        )
    state = ServerState(models, limits or ServerLimits())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            await asyncio.to_thread(state.close)

    app = FastAPI(title="vlmkit", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.vlmkit = state
    app.state.grounding = grounding.ground_service(models, state.limits)
    app.state.imagine = imagine.image_service(models, state.limits.queue)
    install_handlers(app)
    app.include_router(openai_routes.router)
    app.include_router(chat_routes.router)
    app.include_router(vlmkit_routes.router)
    app.include_router(grounding.router)
    app.include_router(imagine.router)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "chat": state.chat is not None,
            "embeddings": state.encoder is not None,
            "search": state.search is not None,
            "read": state.read is not None,
            "detect": app.state.grounding is not None,
            "segment": app.state.grounding is not None and app.state.grounding.segments,
            "images": app.state.imagine is not None,
            "video": state.chat is not None and state.chat.takes_images and video.available(),
            "auth": state.limits.api_key is not None,
        }

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    async def page(request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(GuardMiddleware, limits=state.limits, protected=PROTECTED)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, endpoints=ENDPOINTS)
    return app
