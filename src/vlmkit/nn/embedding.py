"""A token embedding multiplied by a constant, as Gemma's decoders scale theirs by ``sqrt(width)``."""

from __future__ import annotations

import torch
from torch import nn


class ScaledEmbedding(nn.Embedding):
    """``nn.Embedding`` whose rows come out multiplied by ``scale``.

    The factor is rounded to the weight dtype before it multiplies, as Gemma's reference does: in
    bfloat16 ``sqrt(3072)`` becomes 55.5, and a checkpoint was trained with the rounded factor. The
    scale lives in the module, not the weights, so the state dict holds the plain matrix that a tied
    output head reuses unscaled.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, scale: float) -> None:
        super().__init__(num_embeddings, embedding_dim)
        self.scale = scale

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return super().forward(input) * self.weight.new_tensor(self.scale)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale={self.scale:g}"
