"""vlmkit's own routes: ``/v1/classify`` (zero-shot labels for an image), ``/v1/search`` (the index) and
``/v1/read`` (the text of a page image, with boxes)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from vlmkit.errors import InputError
from vlmkit.serving.errors import ApiError
from vlmkit.serving.images import decode_images
from vlmkit.serving.openai_routes import embed, state_of, unknown_model
from vlmkit.serving.openai_schema import ClassifyRequest, ReadRequest, SearchRequest
from vlmkit.serving.requests import check_text_size, min_side
from vlmkit.serving.state import Deadline, result, submit
from vlmkit.tasks.classify import DEFAULT_TEMPLATES, check_templates

router = APIRouter()


def prompt_chars(labels: list[str], templates: list[str]) -> int:
    """Characters of all the prompts (each template filled with each label), without building them."""
    holes = [template.count("{}") for template in templates]
    fixed = sum(len(template) - 2 * n for template, n in zip(templates, holes, strict=True))
    return len(labels) * fixed + sum(holes) * sum(len(label) for label in labels)


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
    templates = list(body.templates) if body.templates is not None else list(DEFAULT_TEMPLATES)
    try:
        check_templates(templates)
    except InputError as error:
        raise ApiError(400, str(error), param="templates") from None
    check_text_size(prompt_chars(labels, templates), state.limits, "labels")
    with state.admit(service.batcher):
        (image,) = await decode_images([body.image], ["image"], state.limits, deadline, min_side(service))
        top_k = min(body.top_k or len(labels), len(labels))
        job = submit(lambda: service.submit_classify(image, labels, templates, top_k))
    predictions = await result(job, deadline)
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
    encoder = state.search_encoder
    if body.image is not None:
        with state.admit(encoder.batcher):
            images = await decode_images([body.image], ["image"], state.limits, deadline, min_side(encoder))
            job = submit(lambda: encoder.submit_images(images))
        vectors = (await result(job, deadline)).numpy()
    else:
        check_text_size(len(body.text), state.limits, "text")  # type: ignore[arg-type]
        vectors = await embed(encoder, [body.text], deadline)  # type: ignore[list-item]
    hits = await deadline.wait(
        asyncio.to_thread(state.search.search, vectors[0], body.k, body.min_score, body.thumbnails, body.text)
    )
    return {"object": "list", "model": encoder.model_id, "data": hits}


@router.post("/v1/read")
async def read(body: ReadRequest, request: Request) -> dict[str, Any]:
    """The text of a page image in reading order: lines and words with boxes (in the sent image's pixels)."""
    state = state_of(request)
    deadline = Deadline(state.limits.timeout_s)
    service = state.read
    if service is None:
        raise ApiError(404, "this server does not read documents; start it with --read", code="no_reader")
    service.admit()
    try:
        (image,) = await decode_images([body.image], ["image"], state.limits, deadline)
        page = await deadline.wait(service.read(image))
    finally:
        service.leave()
    return {"object": "page", "engine": service.engine, "text": page.text, **page.to_dict()}
