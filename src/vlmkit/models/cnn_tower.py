"""A CNN image tower for a dual encoder: a convolutional backbone, then a trainable attention-pooling head.

This is the hybrid tower of the ViT paper (Dosovitskiy et al., 2021: a CNN feature map as the token grid of
a transformer) ending in SigLIP's attention pooling. It exists because a ViT trained from scratch for a few
CPU minutes stays blind to shape, while an ImageNet CNN already sees it: a dual encoder borrows the
pretrained ``backbone`` (kept frozen by the recipes, so its tokens can be cached) and trains only the head
that reads its feature map. ``tokens`` is the part a cache may stand in for; ``pool`` the part that trains
(with ``cell_colours`` it reads the pixels too, for what the CNN's features lost of colour).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlmkit.config import EfficientNetConfig, ImagePoolConfig
from vlmkit.models.efficientnet import EfficientNet
from vlmkit.models.vision import AttentionPoolingHead
from vlmkit.nn import TransformerStack


class FeatureMapPool(nn.Module):
    """Feature-map cells ``(B, cells, channels)`` to one vector ``(B, width)``: normalised and projected (plus,
    with ``cell_colours``, each cell's mean colour through its own projection, so the CNN's 1280 channels do not
    drown 3), given learned positions, mixed by a few transformer blocks, then pooled by a probe token's
    attention."""

    def __init__(self, config: ImagePoolConfig, channels: int, cells: int) -> None:
        super().__init__()
        mlp_dim = config.width * config.mlp_ratio
        self.side = round(cells**0.5)
        self.input_norm = nn.LayerNorm(channels, eps=config.norm_eps)
        self.proj = nn.Linear(channels, config.width)
        self.colour_proj = nn.Linear(3, config.width) if config.cell_colours else None
        self.position = nn.Parameter(torch.randn(1, cells, config.width) * config.width**-0.5)
        self.blocks = TransformerStack(config.layers, config.width, config.heads, mlp_dim, config.act, config.norm_eps)
        self.norm = nn.LayerNorm(config.width, eps=config.norm_eps)
        self.head = AttentionPoolingHead(config.width, config.heads, mlp_dim, config.act, config.norm_eps)
        nn.init.normal_(self.head.probe, std=config.width**-0.5)

    @property
    def reads_pixels(self) -> bool:
        return self.colour_proj is not None

    def forward(self, tokens: torch.Tensor, pixels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.proj(self.input_norm(tokens.to(self.proj.weight.dtype))) + self.position
        if self.colour_proj is not None:
            if pixels is None:
                raise ValueError("this pooling head reads each cell's colour: pass the pixels with the tokens")
            colours = F.adaptive_avg_pool2d(pixels.to(x.dtype), self.side).flatten(2).transpose(1, 2)
            x = x + self.colour_proj(colours)
        return self.head(self.norm(self.blocks(x)))  # type: ignore[arg-type]


class CnnTower(nn.Module):
    """``forward(pixels)`` is the pooled vector, as a ``VisionTransformer``'s is."""

    def __init__(self, backbone: EfficientNetConfig, pool: ImagePoolConfig) -> None:
        super().__init__()
        self.config = backbone
        self.backbone = EfficientNet(backbone)
        self.level = pool.feature_level
        channels, side = backbone.feature_shape(self.level)
        self.pool = FeatureMapPool(pool, channels, side * side)

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """The backbone's feature map at the head's level, one token per cell in row-major order:
        ``(B, cells, channels)``, the tokens a VLM reads from this CNN at that level (``vision_tokens``)."""
        return self.backbone.feature_map(pixels, self.level).flatten(2).transpose(1, 2)

    def forward(self, pixels: torch.Tensor, patch_keep: torch.Tensor | None = None) -> torch.Tensor:
        if patch_keep is not None:
            raise ValueError("patch dropping (FLIP) needs a ViT tower; a CNN reads whole images")
        return self.pool(self.tokens(pixels), pixels)
