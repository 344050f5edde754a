"""Masks from a generative VLM: ``segment`` asks ``segment a ; b`` and turns each object's 16 ``<seg>``
codes into a mask through a mask tokenizer (a VQ-VAE of PaliGemma's design).

The model writes a box and 16 codes per object; the mask tokenizer decodes the codes into a 64x64
mask of the box's content, which is resized into the box (``processing.masks.paste_mask``) and thresholded at 0.5. Only
the mask tokenizer's ``decode`` is used, so any object with that method serves (``MaskCodec``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from vlmkit.errors import InputError
from vlmkit.models import VisionLanguageModel
from vlmkit.processing.images import ImageSource
from vlmkit.processing.locations import (
    SEG_PER_MASK,
    ParsedObject,
    has_segment_tokens,
    segment_prompt,
)
from vlmkit.processing.masks import paste_mask
from vlmkit.tasks.ground import TOKENS_PER_OBJECT, GroundedObject, Grounding, ground_many


class MaskCodec(Protocol):
    """What segmentation needs of a mask tokenizer (``vlmkit.models.mask_tokenizer.MaskTokenizer``)."""

    def encode(self, masks: torch.Tensor) -> torch.Tensor:
        """``(N, 64, 64)`` masks in [0, 1] -> ``(N, 16)`` codes."""
        ...

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``(N, 16)`` codes -> ``(N, 64, 64)`` mask probabilities."""
        ...


def load_mask_codec(source: str, device: str | None = None) -> MaskCodec:
    """The mask tokenizer at ``source`` (``vlmkit.load``-able), frozen, in eval mode."""
    from vlmkit.checkpoints import from_pretrained

    codec = from_pretrained(source, device=device)
    if not (hasattr(codec, "encode") and hasattr(codec, "decode")):
        raise InputError(f"{source}: --mask-tokenizer needs a mask tokenizer (`vlmkit train mask-vae`)")
    if isinstance(codec, nn.Module):
        codec.eval().requires_grad_(False)
    return codec  # type: ignore[return-value]


def segment(
    model: VisionLanguageModel,
    image: ImageSource,
    labels_or_expression: str | Sequence[str],
    mask_tokenizer: MaskCodec,
    max_new_tokens: int | None = None,
) -> Grounding:
    """Each object named by ``labels_or_expression`` with its box and mask."""
    return segment_many(model, [image], [labels_or_expression], mask_tokenizer, max_new_tokens)[0]


def segment_many(
    model: VisionLanguageModel,
    images: Sequence[ImageSource],
    requests: Sequence[str | Sequence[str]],
    mask_tokenizer: MaskCodec,
    max_new_tokens: int | None = None,
    batch_size: int = 16,
) -> list[Grounding]:
    """``segment`` for many images at once (batched generation, one decode of all masks per batch)."""
    if not has_segment_tokens(model.tokenizer):
        raise InputError("this model's tokenizer has no mask tokens (<seg000>..<seg127>); it cannot segment")
    prompts = [segment_prompt(r) for r in requests]
    budget = max_new_tokens or max((p.count(";") + 1) * (TOKENS_PER_OBJECT + SEG_PER_MASK) for p in prompts) * 2
    answers = ground_many(model, images, prompts, budget, batch_size)
    return [with_masks(parsed, grounding, mask_tokenizer) for parsed, grounding in answers]


def with_masks(parsed: list[ParsedObject], grounding: Grounding, mask_tokenizer: MaskCodec) -> Grounding:
    """``grounding`` with the mask of every object whose 16 codes were read (the others keep no mask)."""
    coded = [o for o in parsed if o.codes is not None]
    if not coded:
        return grounding
    codes = torch.tensor([o.codes for o in coded], dtype=torch.long)
    with torch.inference_mode():
        probabilities = mask_tokenizer.decode(codes).float().cpu()
    width, height = grounding.size
    masks = iter(paste_mask(p, o.box, (height, width)) > 0.5 for p, o in zip(probabilities, coded, strict=True))
    objects = [
        GroundedObject(o.label, o.box, next(masks) if o.codes is not None else None, g.score)
        for o, g in zip(parsed, grounding.objects, strict=True)
    ]
    return Grounding(objects, grounding.text, grounding.unparsed, grounding.size)
