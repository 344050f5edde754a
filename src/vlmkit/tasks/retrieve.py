"""Image <-> text retrieval over in-memory embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vlmkit.processing.images import ImageSource
from vlmkit.tasks.embed import EmbeddingModel, embed_images, embed_texts


@dataclass(frozen=True)
class Hit:
    index: int  # position in the candidate list
    score: float  # cosine similarity


def retrieve(queries: torch.Tensor, candidates: torch.Tensor, k: int = 5) -> list[list[Hit]]:
    """The ``k`` most similar candidates of each query (both L2-normalised), best first.

    Ties are broken by the lower candidate index, so results are deterministic.
    """
    scores = queries.float() @ candidates.float().t()
    k = min(k, candidates.shape[0])
    # Sort on (-score, index): torch.topk does not promise an order among equal scores.
    order = torch.argsort(-scores, dim=1, stable=True)[:, :k]
    return [[Hit(int(i), float(scores[q, i])) for i in row] for q, row in enumerate(order)]


def text_to_image(
    model: EmbeddingModel, texts: Sequence[str], images: Sequence[ImageSource], k: int = 5
) -> list[list[Hit]]:
    return retrieve(embed_texts(model, texts), embed_images(model, images), k)


def image_to_text(
    model: EmbeddingModel, images: Sequence[ImageSource], texts: Sequence[str], k: int = 5
) -> list[list[Hit]]:
    return retrieve(embed_images(model, images), embed_texts(model, texts), k)
