"""``/v1/detect`` and ``/v1/segment``: labelled boxes (and masks) from the served VLM, through
``tasks.ground`` and ``tasks.segment``; and the objects a chat reply carries in location tokens.

Grounding asks the chat model in PaliGemma's words (``detect a ; b``, ``segment a``) and parses its answer
with the one parser every grounding path uses (``processing.locations.parse_objects``). As ``/v1/read`` does,
requests run one at a time on a thread behind a bounded queue (503 past it), and a request whose deadline
passes gets 504 while its generation finishes before the next starts, so timeouts cannot pile up threads.
The routes are off (404) unless the chat model's tokenizer has location tokens; ``/v1/segment`` also needs
the mask tokenizer the model was trained with (``vlmkit serve --mask-tokenizer DIR``).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request

from vlmkit.errors import InputError
from vlmkit.models import VisionLanguageModel
from vlmkit.processing.images import open_image
from vlmkit.processing.locations import has_location_tokens, has_segment_tokens, parse_objects
from vlmkit.serving.errors import ApiError
from vlmkit.serving.images import decode_images, image_source
from vlmkit.serving.limits import ServerLimits
from vlmkit.serving.openai_routes import unknown_model
from vlmkit.serving.openai_schema import GroundRequest
from vlmkit.serving.requests import check_text_size
from vlmkit.serving.serial import SerialWorker
from vlmkit.serving.state import Deadline, ServedModels
from vlmkit.tasks.ground import GroundedObject, Grounding, detect, refer
from vlmkit.tasks.segment import MaskCodec, segment, with_masks

LOCATION = re.compile(r"<loc\d{4}>")
router = APIRouter()


class GroundService(SerialWorker):
    """The served VLM as a grounding model: one request at a time, at most ``queue`` waiting."""

    def __init__(self, model: VisionLanguageModel, model_id: str, mask_tokenizer: MaskCodec | None, queue: int) -> None:
        super().__init__("grounding", queue)
        self.model = model
        self.model_id = model_id
        self.mask_tokenizer = mask_tokenizer

    @property
    def segments(self) -> bool:
        return self.mask_tokenizer is not None and has_segment_tokens(self.model.tokenizer)

    def objects_in(self, text: str, image_url: str, limits: ServerLimits) -> list[dict[str, Any]] | None:
        """The objects a chat reply about the image at ``image_url`` writes in location tokens, in the sent
        image's pixels (its header's size: the model saw it shrunk), with masks when this server has the
        mask tokenizer; None when the reply holds no object."""
        if not has_location_text(text):
            return None
        with open_image(image_source(image_url, limits.allow_local_folder, "image")) as header:
            size = header.size
        parsed = parse_objects(text, *size)
        if not parsed.objects:
            return None
        grounding = Grounding([GroundedObject(o.label, o.box) for o in parsed.objects], text, parsed.unparsed, size)
        if self.mask_tokenizer is not None:
            grounding = with_masks(parsed.objects, grounding, self.mask_tokenizer)
        return [o.to_dict() for o in grounding.objects]


def has_location_text(text: str) -> bool:
    return LOCATION.search(text) is not None


def ground_service(models: ServedModels, limits: ServerLimits) -> GroundService | None:
    """The grounding service of the served chat model, or None when it cannot locate objects."""
    model = models.chat
    if isinstance(model, VisionLanguageModel) and has_location_tokens(model.tokenizer):
        return GroundService(model, models.chat_id, models.mask_tokenizer, limits.queue)
    return None


def service_of(request: Request, segmenting: bool) -> GroundService:
    service: GroundService | None = request.app.state.grounding
    if service is None:
        raise ApiError(
            404,
            "this server does not locate objects; serve a VLM with location tokens (--vlm)",
            code="no_grounding",
        )
    if segmenting and not service.segments:
        raise ApiError(
            404,
            "this server does not segment; serve a VLM with mask tokens and its --mask-tokenizer",
            code="no_segmentation",
        )
    return service


def _asked(body: GroundRequest, service: GroundService) -> str | list[str]:
    """What to find: the labels (a list or one ``;``-separated string) or one referring expression."""
    if body.model is not None and body.model != service.model_id:
        raise unknown_model(body.model, [service.model_id], "grounding")
    if (body.labels is None) == (body.expression is None):
        raise ApiError(400, "give exactly one of 'labels' and 'expression'", param="labels")
    if body.expression is not None:
        if not body.expression.strip() or ";" in body.expression:
            raise ApiError(400, "expression: one non-empty referring expression, without ';'", param="expression")
        return body.expression
    labels = body.labels.split(";") if isinstance(body.labels, str) else list(body.labels)  # type: ignore[union-attr]
    labels = [label.strip() for label in labels]
    if not labels or not all(labels):
        raise ApiError(400, "labels must be non-empty", param="labels")
    return labels


async def _ground(body: GroundRequest, request: Request, segmenting: bool) -> dict[str, Any]:
    state = request.app.state.vlmkit
    deadline = Deadline(state.limits.timeout_s)
    service = service_of(request, segmenting)
    asked = _asked(body, service)
    check_text_size(sum(map(len, asked)) if isinstance(asked, list) else len(asked), state.limits, "labels")
    model, codec = service.model, service.mask_tokenizer

    def work() -> Grounding:
        if segmenting:
            return segment(model, image, asked, codec)  # type: ignore[arg-type]
        return refer(model, image, asked) if isinstance(asked, str) else detect(model, image, asked)

    service.admit()
    try:
        (image,) = await decode_images(
            [body.image], ["image"], state.limits, deadline
        )  # full size: boxes in its pixels
        try:
            grounding = await deadline.wait(service.run(work))
        except InputError as error:
            raise ApiError(400, str(error)) from None
    finally:
        service.leave()
    return {"object": "grounding", "model": service.model_id, **grounding.to_dict()}


@router.post("/v1/detect")
async def detect_route(body: GroundRequest, request: Request) -> dict[str, Any]:
    """Every instance of ``labels``, or the one object ``expression`` names: labels and boxes in the sent
    image's pixels, the model's raw text and what of it was not an object."""
    return await _ground(body, request, segmenting=False)


@router.post("/v1/segment")
async def segment_route(body: GroundRequest, request: Request) -> dict[str, Any]:
    """As ``/v1/detect``, each object with its mask (COCO uncompressed RLE, in the image's pixels)."""
    return await _ground(body, request, segmenting=True)
