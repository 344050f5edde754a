"""CLIPScore: how well generated images match their prompts, as judged by a dual encoder (a vlmkit CLIP).

Hessel et al. (2021), "CLIPScore: A Reference-free Evaluation Metric for Image Captioning", define
``CLIP-S(c, v) = w * max(cos(c, v), 0)`` for a caption ``c`` and an image ``v`` with ``w = 2.5``, a
weight chosen to stretch caption-evaluation scores towards [0, 1]. Text-to-image work reports the same
clipped cosine with ``w = 100`` instead (torchmetrics' ``CLIPScore``, the figures of ~30 quoted for
Stable Diffusion), and that is what this module returns: ``100 * max(cos, 0)``, the clipped cosine
as a percentage. Multiply by 0.025 for Hessel's ``w = 2.5`` number. The mean is over images, each
scored against the prompt it was generated from.

A CLIPScore means something only for the CLIP it was measured with: the same images score differently
under another dual encoder, so the report names the scorer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vlmkit.errors import InputError
from vlmkit.processing.images import ImageSource
from vlmkit.tasks.embed import EmbeddingModel, embed_images, embed_texts

WEIGHT = 100.0
"""``w`` of ``w * max(cos, 0)``: 100 as in text-to-image papers (Hessel et al.'s captioning score used 2.5)."""


def clip_scores(
    model: EmbeddingModel, images: Sequence[ImageSource], prompts: Sequence[str], batch_size: int = 32
) -> torch.Tensor:
    """``100 * max(cos(image_i, prompt_i), 0)`` for each pair (N,), float32."""
    if len(images) != len(prompts):
        raise InputError(f"CLIPScore: {len(images)} image(s) but {len(prompts)} prompt(s); expected one prompt each")
    if not images:
        raise InputError("CLIPScore: expected at least one image")
    image_embeds = embed_images(model, images, batch_size=batch_size)
    text_embeds = embed_texts(model, prompts)
    cosine = (image_embeds * text_embeds).sum(dim=-1)  # both are L2-normalised
    return WEIGHT * cosine.clamp(min=0)


def clip_score(
    model: EmbeddingModel, images: Sequence[ImageSource], prompts: Sequence[str], batch_size: int = 32
) -> float:
    """The mean CLIPScore over the images (see ``clip_scores``)."""
    return float(clip_scores(model, images, prompts, batch_size).mean())
