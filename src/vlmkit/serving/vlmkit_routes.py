"""vlmkit's own routes: ``/v1/classify`` (zero-shot labels for an image) and ``/v1/search`` (the index)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from PIL import Image

from vlmkit.serving.errors import ApiError
from vlmkit.serving.openai_routes import decode_images, embed, state_of, unknown_model
from vlmkit.serving.openai_schema import ClassifyRequest, SearchRequest
from vlmkit.serving.state import Deadline, result, submit

router = APIRouter()


@router.post("/v1/classify")
async def classify(body: ClassifyRequest, request: Request) -> dict[str, Any]:
    """Probabilities of each label for the image (softmax for CLIP models, sigmoid for SigLIP), best first."""
    state = state_of(request)
    deadline = Deadline(state.limits.timeout_s)
    service = state.encoder
    if service is None or (body.model is not None and body.model != service.model_id):
        raise unknown_model(body.model or "", [service.model_id] if service else [], "classification")
    labels = [label.strip() for label in body.labels]
    if not all(labels) or len(set(labels)) != len(labels):
        raise ApiError(400, "labels must be distinct and non-empty", param="labels")
    if body.templates is not None and any("{}" not in t for t in body.templates):
        raise ApiError(400, "every template needs a '{}' placeholder for the label", param="templates")
    (image,) = await decode_images([body.image], ["image"], state.limits, deadline)
    top_k = min(body.top_k or len(labels), len(labels))
    predictions = await result(submit(lambda: service.submit_classify(image, labels, body.templates, top_k)), deadline)
    return {
        "object": "classification",
        "model": service.model_id,
        "data": [{"label": p.label, "probability": p.probability} for p in predictions],
    }


@router.post("/v1/search")
async def search(body: SearchRequest, request: Request) -> dict[str, Any]:
    """The index's nearest items to a text or an image, with JPEG thumbnails as data URLs."""
    state = state_of(request)
    deadline = Deadline(state.limits.timeout_s)
    if state.search is None or state.search_encoder is None:
        raise ApiError(404, "this server has no search index; start it with --index", code="no_index")
    if (body.text is None) == (body.image is None):
        raise ApiError(400, "give exactly one of 'text' and 'image'", param="text")
    if body.text is not None and not body.text.strip():
        raise ApiError(400, "text must not be empty", param="text")
    if body.image is not None:
        query: list[str] | list[Image.Image] = await decode_images([body.image], ["image"], state.limits, deadline)
    else:
        query = [body.text]  # type: ignore[list-item]
    vectors = await embed(state.search_encoder, query, deadline)
    hits = await deadline.wait(
        asyncio.to_thread(state.search.search, vectors[0], body.k, body.min_score, body.thumbnails)
    )
    return {"object": "list", "model": state.search_encoder.model_id, "data": hits}
