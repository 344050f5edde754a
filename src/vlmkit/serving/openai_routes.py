"""OpenAI-compatible routes: ``/v1/models`` and ``/v1/embeddings`` here, ``/v1/chat/completions`` in
``serving.chat_routes``.

Bodies follow OpenAI's API closely enough that its official client works unchanged. Embeddings take images too,
as a vlmkit extension: ``"input_type": "image"`` with image URLs as inputs. Images come as ``data:`` URLs (or
``file://`` inside the allowed folder), never fetched from the web.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from PIL import Image

from vlmkit.serving.encoder import EncoderService
from vlmkit.serving.errors import ApiError
from vlmkit.serving.images import check_image_count, decode_images
from vlmkit.serving.openai_schema import EmbeddingRequest
from vlmkit.serving.requests import check_text_size, min_side
from vlmkit.serving.state import Deadline, ServerState, result, submit

MAX_EMBEDDING_INPUTS = 2048


router = APIRouter()


def state_of(request: Request) -> ServerState:
    return request.app.state.vlmkit


def unknown_model(name: str, served: Sequence[str], what: str) -> ApiError:
    offered = ", ".join(repr(s) for s in served) or "none"
    return ApiError(
        404, f"the model {name!r} is not served for {what} (served: {offered})", param="model", code="model_not_found"
    )


def model_card(model_id: str, state: ServerState) -> dict[str, Any]:
    """OpenAI's model object, plus ``capabilities`` (a vlmkit extension: what the model serves here)."""
    uses = state.capabilities()[model_id]
    return {"id": model_id, "object": "model", "created": state.started, "owned_by": "vlmkit", "capabilities": uses}


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    state = state_of(request)
    return {"object": "list", "data": [model_card(i, state) for i in state.capabilities()]}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    state = state_of(request)
    if model_id not in state.capabilities():
        raise unknown_model(model_id, list(state.capabilities()), "any endpoint")
    return model_card(model_id, state)


# ------------------------------------------------------------------------------------ embeddings


def embedding_inputs(body: EmbeddingRequest) -> list[str]:
    inputs = [body.input] if isinstance(body.input, str) else list(body.input)
    if not inputs:
        raise ApiError(400, "input must not be empty", param="input")
    if not all(isinstance(item, str) for item in inputs):
        raise ApiError(400, "token-id inputs are not supported; send strings", param="input", code="unsupported_value")
    if len(inputs) > MAX_EMBEDDING_INPUTS:
        raise ApiError(400, f"at most {MAX_EMBEDDING_INPUTS} inputs per request, got {len(inputs)}", param="input")
    if any(not item for item in inputs):
        raise ApiError(400, "input strings must not be empty", param="input")
    return inputs  # type: ignore[return-value]


def encode_vector(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.astype(np.float32).tolist()


async def embed(service: EncoderService, inputs: list[str] | list[Image.Image], deadline: Deadline) -> np.ndarray:
    """Vectors of texts or of decoded images, through the service's batcher."""
    if inputs and isinstance(inputs[0], Image.Image):
        job = submit(lambda: service.submit_images(inputs))  # type: ignore[arg-type]
    else:
        job = submit(lambda: service.submit_texts(inputs))  # type: ignore[arg-type]
    return (await result(job, deadline)).numpy()


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request) -> dict[str, Any]:
    state = state_of(request)
    deadline = Deadline(state.limits.timeout_s)
    service = state.encoder
    if service is None or body.model != service.model_id:
        raise unknown_model(body.model, [service.model_id] if service else [], "embeddings")
    if body.dimensions is not None and body.dimensions != service.dim:
        raise ApiError(400, f"dimensions must be {service.dim} for this model (no truncation)", param="dimensions")
    inputs = embedding_inputs(body)
    if body.input_type == "image":
        check_image_count(len(inputs), state.limits, "input")
        params = [f"input[{i}]" for i in range(len(inputs))] if isinstance(body.input, list) else ["input"]
        with state.admit(service.batcher):
            images = await decode_images(inputs, params, state.limits, deadline, min_side(service))
            job = submit(lambda: service.submit_images(images))
        vectors, tokens = (await result(job, deadline)).numpy(), 0
    else:
        check_text_size(sum(len(text) for text in inputs), state.limits, "input")
        vectors = await embed(service, inputs, deadline)
        tokens = await deadline.wait(asyncio.to_thread(service.count_tokens, inputs))
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode_vector(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": service.model_id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
