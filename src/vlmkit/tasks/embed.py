"""Batched embedding of images and texts with a loaded dual encoder (CLIP, SigLIP or ConSE).

These are the only places tasks turn files and strings into tensors, so batching, device placement,
``inference_mode``, the "not a dual encoder" and "this model has no tokenizer" errors live here once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vlmkit.errors import InputError
from vlmkit.models import ConSEModel, DualEncoder
from vlmkit.processing.images import ImageSource

EmbeddingModel = DualEncoder | ConSEModel


def check_dual_encoder(model: object) -> None:
    """Raise one line unless ``model`` embeds images and texts into one space (``encode_image`` and
    ``encode_text``, as ``DualEncoder`` and ``ConSEModel`` have; a generative VLM has neither)."""
    if not (hasattr(model, "encode_image") and hasattr(model, "encode_text")):
        raise InputError(
            f"a {type(model).__name__} cannot embed images and texts into one space; embedding, classification "
            "and retrieval need a dual encoder (CLIP, SigLIP or vlmkit:conse-effnet-minilm)"
        )


def _require(model: EmbeddingModel, attribute: str, what: str):
    value = getattr(model, attribute, None)
    if value is None:
        raise InputError(
            f"this model has no {what}; load it with vlmkit.load() from a directory that has one, "
            f"or set model.{attribute}"
        )
    return value


@torch.inference_mode()
def embed_images(model: EmbeddingModel, images: Sequence[ImageSource], batch_size: int = 32) -> torch.Tensor:
    """L2-normalised image embeddings (N, embed_dim), float32 on the CPU."""
    check_dual_encoder(model)
    processor = _require(model, "image_processor", "image processor")
    dtype = model.logit_scale.dtype
    chunks = [
        model.encode_image(processor(list(images[i : i + batch_size])).to(model.device, dtype)).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(chunks) if chunks else torch.empty(0, model.config.embed_dim)


@torch.inference_mode()
def embed_texts(model: EmbeddingModel, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """L2-normalised text embeddings (N, embed_dim), float32 on the CPU."""
    check_dual_encoder(model)
    tokenizer = _require(model, "tokenizer", "tokenizer")
    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start : start + batch_size]))
        mask = batch.attention_mask.to(model.device) if model.config.text.uses_attention_mask else None
        chunks.append(model.encode_text(batch.input_ids.to(model.device), mask).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, model.config.embed_dim)
