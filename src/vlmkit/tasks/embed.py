"""Batched embedding of images and texts with a loaded dual encoder.

These are the only places tasks turn files and strings into tensors, so batching, device placement,
``inference_mode`` and the "this model has no tokenizer" error live here once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vlmkit.errors import InputError
from vlmkit.models import DualEncoder
from vlmkit.processing.images import ImageSource


def _require(model: DualEncoder, attribute: str, what: str):
    value = getattr(model, attribute, None)
    if value is None:
        raise InputError(
            f"this model has no {what}; load it with vlmkit.load() from a directory that has one, "
            f"or set model.{attribute}"
        )
    return value


@torch.inference_mode()
def embed_images(model: DualEncoder, images: Sequence[ImageSource], batch_size: int = 32) -> torch.Tensor:
    """L2-normalised image embeddings (N, embed_dim), float32 on the CPU."""
    processor = _require(model, "image_processor", "image processor")
    dtype = model.logit_scale.dtype
    chunks = [
        model.encode_image(processor(list(images[i : i + batch_size])).to(model.device, dtype)).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(chunks) if chunks else torch.empty(0, model.config.embed_dim)


@torch.inference_mode()
def embed_texts(model: DualEncoder, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """L2-normalised text embeddings (N, embed_dim), float32 on the CPU."""
    tokenizer = _require(model, "tokenizer", "tokenizer")
    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start : start + batch_size]))
        mask = batch.attention_mask.to(model.device) if model.config.text.uses_attention_mask else None
        chunks.append(model.encode_text(batch.input_ids.to(model.device), mask).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, model.config.embed_dim)
