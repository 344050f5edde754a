"""ConSE: an image-text model made of an ImageNet classifier and a sentence encoder, without training.

Norouzi et al. (2014), "Zero-Shot Learning by Convex Combination of Semantic Embeddings": given a
classifier's probabilities ``p`` over known classes with embeddings ``c_y`` in a semantic space, an
image maps to

    f(x) = (1 / Z) * sum over the T most likely classes y of p(y | x) * c_y,   Z = sum of those p,

a point in the same space as anything else that space can embed. Here the space is a sentence
encoder's, ``c_y`` is the encoder's embedding of class ``y``'s name (averaged over a few prompts,
precomputed into ``class_embeddings``), and text queries are embedded by that same encoder, so text
and images meet. The result is L2-normalised, which makes ``1 / Z`` irrelevant.

What this can and cannot do follows from the construction: an image is described by at most ``T``
ImageNet class names, so object-like queries ("a cat", "a cup of coffee") work; relations, counts,
colours, scenes outside ImageNet's classes and text inside images do not. ``ConSEModel`` offers the
``DualEncoder`` interface the tasks use, so classification, retrieval and search run on it unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vlmkit.config import ConSEConfig
from vlmkit.models.efficientnet import EfficientNet
from vlmkit.models.text import TextTransformer


class ConSEModel(nn.Module):
    """``encode_image`` / ``encode_text`` / ``similarity`` / ``probabilities`` like ``DualEncoder``."""

    def __init__(self, config: ConSEConfig) -> None:
        super().__init__()
        self.config = config
        self.vision = EfficientNet(config.vision)
        self.text = TextTransformer(config.text)
        # Row y: the unit sentence embedding of class y's name; filled in when the model is built.
        self.register_buffer("class_embeddings", torch.zeros(config.vision.num_classes, config.embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init), requires_grad=False)
        self.tokenizer = None
        self.image_processor = None

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def class_probabilities(self, pixels: torch.Tensor) -> torch.Tensor:
        """The classifier's softmax ``(B, num_classes)``."""
        return self.vision(pixels).float().softmax(dim=-1)

    def encode_image(self, pixels: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """The convex combination of the top ``top_k`` class embeddings, weighted by probability."""
        top = self.class_probabilities(pixels).topk(self.config.top_k, dim=-1)
        weights = top.values / top.values.sum(dim=-1, keepdim=True)
        chosen = self.class_embeddings[top.indices].float()  # (B, T, D)
        embeds = torch.einsum("bt,btd->bd", weights, chosen).to(self.class_embeddings.dtype)
        return F.normalize(embeds, dim=-1) if normalize else embeds

    def encode_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, normalize: bool = True
    ) -> torch.Tensor:
        embeds = self.text(input_ids, attention_mask)
        return F.normalize(embeds, dim=-1) if normalize else embeds

    def similarity(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """Logits (images x texts): ``exp(logit_scale) * cos``."""
        return image_embeds @ text_embeds.t() * self.logit_scale.exp()

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax over the texts: one label per image, as with CLIP."""
        return logits.softmax(dim=-1)

    @property
    def temperature(self) -> float:
        return math.exp(-self.logit_scale.item())
