"""``POST /v1/images/generations``: OpenAI's image API over ``tasks.imagine``, so the openai client's
``images.generate`` works unchanged and gets ``b64_json`` PNGs.

Sampling a DiT is many full forward passes and does not share a batch with chat, so requests run one at a
time (``serial.SerialWorker``). Bad settings are the task's own one-line errors as 400s: an empty prompt,
steps outside 1..1000, a guidance of NaN, more images than ``tasks.imagine.MAX_IMAGES``; a ``size`` other
than the model's and a ``response_format`` other than ``b64_json`` are refused, not silently changed.
"""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import torch
from fastapi import APIRouter, Request
from PIL import Image

from vlmkit.errors import InputError
from vlmkit.models.dit import DiT
from vlmkit.serving.errors import ApiError
from vlmkit.serving.openai_routes import unknown_model
from vlmkit.serving.openai_schema import ImageGenerationRequest
from vlmkit.serving.requests import check_text_size
from vlmkit.serving.serial import SerialWorker
from vlmkit.serving.state import Deadline, ServedModels
from vlmkit.tasks.imagine import ImagineSettings, check_prompts, generate_images

router = APIRouter()


class ImageService(SerialWorker):
    """The served text-to-image model: one generation at a time, at most ``queue`` waiting."""

    def __init__(self, model: DiT, model_id: str, queue: int) -> None:
        super().__init__("image generation", queue)
        self.model = model
        self.model_id = model_id

    @property
    def size(self) -> str:
        side = self.model.config.image_size
        return f"{side}x{side}"


def image_service(models: ServedModels, queue: int) -> ImageService | None:
    return None if models.t2i is None else ImageService(models.t2i, models.t2i_id, queue)


def _png_base64(image: torch.Tensor) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _settings(body: ImageGenerationRequest, service: ImageService) -> ImagineSettings:
    if body.model is not None and body.model != service.model_id:
        raise unknown_model(body.model, [service.model_id], "image generation")
    if body.response_format not in (None, "b64_json"):
        raise ApiError(
            400, "response_format: only b64_json (this server hosts no files)", param="response_format",
            code="unsupported_value",
        )  # fmt: skip
    if body.size not in (None, service.size):
        raise ApiError(400, f"size: this model draws {service.size} images", param="size", code="unsupported_value")
    seed = body.seed if body.seed is not None else int(time.time_ns() % 2**31)
    return ImagineSettings(steps=body.steps, guidance=body.guidance, sampler=body.sampler, seed=seed)  # type: ignore[arg-type]


@router.post("/v1/images/generations")
async def generations(body: ImageGenerationRequest, request: Request) -> dict[str, Any]:
    """``n`` images of ``prompt`` as base64 PNGs, in OpenAI's shape (``created``, ``data[].b64_json``)."""
    state = request.app.state.vlmkit
    service: ImageService | None = request.app.state.imagine
    if service is None:
        raise ApiError(404, "this server generates no images; serve a text-to-image model (--t2i)", code="no_t2i")
    deadline = Deadline(state.limits.timeout_s)
    check_text_size(len(body.prompt), state.limits, "prompt")
    settings = _settings(body, service)
    try:  # refused before it waits in the queue
        settings.check()
        check_prompts([body.prompt], body.n)
    except InputError as error:
        raise ApiError(400, str(error)) from None
    service.admit()
    try:
        images = await deadline.wait(
            service.run(lambda: generate_images(service.model, [body.prompt], body.n, settings))
        )
    except InputError as error:
        raise ApiError(400, str(error)) from None
    finally:
        service.leave()
    return {"created": int(time.time()), "data": [{"b64_json": _png_base64(image)} for image in images]}
