"""Contrastive dual encoder: CLIP (softmax head) and SigLIP (sigmoid head) by config."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vlmkit.config import DualEncoderConfig, EfficientNetConfig
from vlmkit.models.cnn_tower import CnnTower
from vlmkit.models.text import TextTransformer
from vlmkit.models.vision import VisionTransformer


def _projection(kind: str, width: int, embed_dim: int) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    return nn.Linear(width, embed_dim, bias=kind == "linear_bias")


@dataclass
class DualEncoderOutput:
    """Embeddings, their logits, and the head's parameters, so a loss needs nothing but the output."""

    image_embeds: torch.Tensor  # (B_img, embed_dim), L2-normalised
    text_embeds: torch.Tensor  # (B_txt, embed_dim), L2-normalised
    logits_per_image: torch.Tensor  # (B_img, B_txt)
    logit_scale: torch.Tensor  # () log of the inverse temperature
    logit_bias: torch.Tensor | None = None  # () the sigmoid head's bias; None for CLIP


class DualEncoder(nn.Module):
    """Image and text towers mapped into one embedding space.

    A loaded model also carries ``tokenizer`` and ``image_processor`` (set by ``from_pretrained``) so
    that tasks can go from files and strings to embeddings; a bare model has them as None. The image tower
    is a ViT or a ``CnnTower`` (a CNN backbone and the head that pools its feature map), by config.
    """

    def __init__(self, config: DualEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.vision: VisionTransformer | CnnTower = (
            CnnTower(config.vision, config.image_pool)  # type: ignore[arg-type]
            if isinstance(config.vision, EfficientNetConfig)
            else VisionTransformer(config.vision)
        )
        self.text = TextTransformer(config.text)
        self.image_projection = _projection(config.image_projection, config.image_width, config.embed_dim)
        self.text_projection = _projection(config.text_projection, config.text.width, config.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init))
        self.logit_bias = nn.Parameter(torch.tensor(config.logit_bias_init)) if config.head == "sigmoid" else None
        for projection, width in (
            (self.image_projection, config.image_width),
            (self.text_projection, config.text.width),
        ):
            if isinstance(projection, nn.Linear):
                nn.init.normal_(projection.weight, std=width**-0.5)
        self.tokenizer = None
        self.image_processor = None

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def encode_image(
        self,
        pixels: torch.Tensor | None,
        normalize: bool = True,
        patch_keep: torch.Tensor | None = None,
        vision_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``patch_keep``: the patches a ViT tower sees (FLIP's patch dropping, in training only).
        ``vision_tokens``: a CNN tower's backbone tokens (``CnnTower.tokens``), given in place of running the
        backbone when it is frozen and its tokens cached (the pixels then only for a head with cell colours)."""
        if vision_tokens is not None:
            if not isinstance(self.vision, CnnTower):
                raise ValueError("vision_tokens stand in for a CNN backbone's output; this tower is a ViT")
            pooled = self.vision.pool(vision_tokens, pixels)
        else:
            pooled = self.vision(pixels, patch_keep)  # type: ignore[arg-type]
        embeds = self.image_projection(pooled)
        return F.normalize(embeds, dim=-1) if normalize else embeds

    def encode_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, normalize: bool = True
    ) -> torch.Tensor:
        embeds = self.text_projection(self.text(input_ids, attention_mask))
        return F.normalize(embeds, dim=-1) if normalize else embeds

    def similarity(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """Logits (images x texts): exp(logit_scale)·cos, plus logit_bias for the sigmoid head."""
        logits = image_embeds @ text_embeds.t() * self.logit_scale.exp()
        return logits + self.logit_bias if self.logit_bias is not None else logits

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """CLIP: softmax over the texts (one label per image). SigLIP: independent sigmoids."""
        return torch.sigmoid(logits) if self.config.head == "sigmoid" else logits.softmax(dim=-1)

    def forward(
        self,
        pixels: torch.Tensor | None,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        patch_keep: torch.Tensor | None = None,
        vision_tokens: torch.Tensor | None = None,
    ) -> DualEncoderOutput:
        image_embeds = self.encode_image(pixels, patch_keep=patch_keep, vision_tokens=vision_tokens)
        text_embeds = self.encode_text(input_ids, attention_mask)
        logits = self.similarity(image_embeds, text_embeds)
        return DualEncoderOutput(image_embeds, text_embeds, logits, self.logit_scale, self.logit_bias)

    @property
    def temperature(self) -> float:
        return math.exp(-self.logit_scale.item())
