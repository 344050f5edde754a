"""Boxes from a generative VLM: ``detect`` (labels -> every instance's box) and ``refer`` (an expression ->
the one object it names).

The model is asked in PaliGemma's words (``detect a ; b``) and answers with location tokens; every
answer goes through the one parser, ``processing.locations.parse_objects``, so detection, referring,
segmentation and evaluation read boxes identically. A malformed or truncated answer gives the objects
that could be read plus the raw text (``Grounding.text``, ``Grounding.unparsed``), never an exception.

Coordinates are relative to the whole image, which is what the model sees when its image processor
squashes rather than crops (PaliGemma, and vlmkit's own VLMs built on ``train align``). Greedy decoding
gives no confidence, so ``score`` is None unless a caller sets one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlmkit.data.shapesworld.masks import rle_encode
from vlmkit.errors import InputError
from vlmkit.models import VisionLanguageModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import with_image
from vlmkit.processing.images import ImageSource, load_image
from vlmkit.processing.locations import (
    ALL_OBJECTS_PROMPT,
    PALIGEMMA,
    Box,
    Convention,
    ParsedObject,
    detect_prompt,
    has_location_tokens,
    parse_objects,
)
from vlmkit.tasks.chat import chat_encoder, respond

TOKENS_PER_OBJECT = 16
"""Generation budget per requested object: four location tokens, a label of a few tokens, `` ; ``."""
ALL_OBJECTS_BUDGET = 8 * TOKENS_PER_OBJECT


@dataclass(frozen=True)
class GroundedObject:
    """One object a model located: ``box`` is ``[x0, y0, x1, y1]`` in pixels of the input image, ``mask`` a
    boolean ``(H, W)`` array when segmented, ``score`` the model's confidence when it gives one."""

    label: str
    box: Box
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the mask as COCO uncompressed RLE (the dataset format)."""
        result: dict[str, Any] = {"label": self.label, "box": [round(v, 2) for v in self.box]}
        if self.score is not None:
            result["score"] = self.score
        if self.mask is not None:
            result["mask"] = rle_encode(self.mask)
        return result


@dataclass(frozen=True)
class Grounding:
    """A model's answer about one image: the objects read from it, its raw ``text``, the fragments that
    were not objects (``unparsed``) and the image's ``size`` (width, height)."""

    objects: list[GroundedObject]
    text: str
    unparsed: tuple[str, ...]
    size: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "objects": [o.to_dict() for o in self.objects],
            "text": self.text,
            "unparsed": list(self.unparsed),
            "width": self.size[0],
            "height": self.size[1],
        }


def check_grounding(model: object) -> None:
    """Raise one line unless ``model`` is a VLM whose tokenizer has location tokens."""
    if not isinstance(model, VisionLanguageModel):
        raise InputError(f"a {type(model).__name__} cannot locate objects; grounding needs a vision-language model")
    if not has_location_tokens(model.tokenizer):
        raise InputError(
            "this model's tokenizer has no location tokens (<loc0000>..<loc1023>); train one with "
            "`vlmkit train instruct --grounding-share 1`, or load a PaliGemma checkpoint"
        )


def ground_many(
    model: VisionLanguageModel,
    images: Sequence[ImageSource],
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int = 16,
    convention: Convention = PALIGEMMA,
) -> list[tuple[list[ParsedObject], Grounding]]:
    """Ask ``prompts[i]`` about ``images[i]`` (greedy, batched) and parse each answer.

    Returns, per image, the parsed objects (with their mask codes, for ``tasks.segment``) and the
    ``Grounding`` of their boxes.
    """
    check_grounding(model)
    if len(images) != len(prompts):
        raise InputError(f"prompts: expected one per image ({len(images)}), got {len(prompts)}")
    encoder = chat_encoder(model)
    config = GenerationConfig(max_new_tokens=max_new_tokens)
    results = []
    for start in range(0, len(images), batch_size):
        pictures = [load_image(image) for image in images[start : start + batch_size]]
        ids = [
            encoder.encode([{"role": "user", "content": with_image(p)}], add_generation_prompt=True).input_ids
            for p in prompts[start : start + batch_size]
        ]
        for picture, answer in zip(pictures, respond(model, ids, pictures, config), strict=True):
            parsed = parse_objects(answer.strip(), picture.width, picture.height, convention)
            objects = [GroundedObject(o.label, o.box) for o in parsed.objects]
            results.append((parsed.objects, Grounding(objects, parsed.text, parsed.unparsed, picture.size)))
    return results


def detect(
    model: VisionLanguageModel,
    image: ImageSource,
    labels: str | Sequence[str],
    max_new_tokens: int | None = None,
) -> Grounding:
    """Every instance of ``labels`` (a list, or one ``;``-separated string) in ``image``."""
    prompt = detect_prompt(labels)
    budget = max_new_tokens or TOKENS_PER_OBJECT * (prompt.count(";") + 1) * 2
    return ground_many(model, [image], [prompt], budget)[0][1]


def detect_all(model: VisionLanguageModel, image: ImageSource, max_new_tokens: int = ALL_OBJECTS_BUDGET) -> Grounding:
    """Every object in ``image``, each with the label the model gives it (Florence-2's all-objects task,
    asked with ``ALL_OBJECTS_PROMPT``)."""
    return ground_many(model, [image], [ALL_OBJECTS_PROMPT], max_new_tokens)[0][1]


def refer(
    model: VisionLanguageModel, image: ImageSource, expression: str, max_new_tokens: int = TOKENS_PER_OBJECT
) -> Grounding:
    """The object ``expression`` names ("the red star left of the circle"): PaliGemma asks this as
    ``detect EXPRESSION``; the first object of the answer is the referent, so ``objects`` holds at most one."""
    if ";" in expression:
        raise InputError(f"expression: one referring expression, without ';', got {expression!r}")
    grounding = ground_many(model, [image], [detect_prompt(expression)], max_new_tokens)[0][1]
    return Grounding(grounding.objects[:1], grounding.text, grounding.unparsed, grounding.size)
