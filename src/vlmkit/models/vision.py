"""ViT image encoder in the CLIP and SigLIP flavours (see ``VisionConfig``).

``patch_keep`` (B, K) selects the patch tokens a forward sees, after their position embedding: FLIP's
patch dropping in contrastive training (Li et al., 2023) and MAE's visible patches (He et al., 2022) are
this one gather. Class tokens are always kept. ``random_patch_keep`` draws the indices from a generator,
so a batch source can make them reproducible from (seed, epoch, index).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from vlmkit.config import VisionConfig
from vlmkit.nn import MLP, Attention, TransformerStack


class AttentionPoolingHead(nn.Module):
    """SigLIP's multihead attention pooling (MAP): a learned probe token attends over all tokens."""

    def __init__(self, width: int, heads: int, mlp_dim: int, act: str, norm_eps: float) -> None:
        super().__init__()
        self.probe = nn.Parameter(torch.zeros(1, 1, width))
        self.attn = Attention(width, heads)
        self.norm = nn.LayerNorm(width, eps=norm_eps)
        self.mlp = MLP(width, mlp_dim, act)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        pooled = self.attn(self.probe.expand(tokens.shape[0], -1, -1), context=tokens)
        return (pooled + self.mlp(self.norm(pooled)))[:, 0]


def conv_stem(config: VisionConfig) -> nn.Sequential:
    """``conv_stem`` stride-2 3x3 convolutions whose channels double up to ``width`` (Xiao et al., 2021)."""
    layers: list[nn.Module] = []
    channels = [config.channels] + [config.width // 2 ** (config.conv_stem - i) for i in range(1, config.conv_stem + 1)]
    batch_norm = config.conv_stem_norm == "batch"
    for c_in, c_out in itertools.pairwise(channels):
        layers.append(nn.Conv2d(c_in, c_out, 3, 2, 1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.GELU())
    return nn.Sequential(*layers)


def random_patch_keep(batch: int, patches: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """(batch, K) sorted indices of the patches to keep, a uniform random subset per image, where
    K = ``patches * (1 - ratio)`` rounded down but at least one (MAE's count)."""
    if not 0 <= ratio < 1:
        raise ValueError(f"patch drop ratio must be in [0, 1), got {ratio}")
    keep = max(1, int(patches * (1 - ratio)))
    noise = torch.rand(batch, patches, generator=generator)
    return noise.argsort(dim=1)[:, :keep].sort(dim=1).values


class VisionTransformer(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = conv_stem(config) if config.conv_stem else None
        stride = config.patch_size // 2**config.conv_stem
        self.patch_embed = nn.Conv2d(
            config.width if config.conv_stem else config.channels, config.width, stride, stride, bias=config.patch_bias
        )
        self.class_embedding = nn.Parameter(torch.zeros(config.width)) if config.class_token else None
        self.position_embedding = nn.Parameter(torch.zeros(config.num_tokens, config.width))
        self.pre_norm = nn.LayerNorm(config.width, eps=config.norm_eps) if config.pre_norm else nn.Identity()
        self.transformer = TransformerStack(
            config.layers, config.width, config.heads, config.mlp_dim, config.act, config.norm_eps
        )
        self.post_norm = nn.LayerNorm(config.width, eps=config.norm_eps)
        self.head = (
            AttentionPoolingHead(config.width, config.heads, config.mlp_dim, config.act, config.norm_eps)
            if config.pooling == "map"
            else None
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        scale = self.config.width**-0.5
        nn.init.normal_(self.position_embedding, std=scale)
        if self.class_embedding is not None:
            nn.init.normal_(self.class_embedding, std=scale)
        if self.head is not None:
            nn.init.normal_(self.head.probe, std=scale)

    def embed(self, pixels: torch.Tensor, patch_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens entering the first block: class token (if any), then the patches ``patch_keep`` names
        (all of them when None), each with its position embedding."""
        if pixels.ndim != 4 or pixels.shape[1] != self.config.channels:
            raise ValueError(f"expected pixels of shape (B, {self.config.channels}, H, W), got {tuple(pixels.shape)}")
        size = self.config.image_size
        if pixels.shape[-2:] != (size, size):
            raise ValueError(f"expected {size}x{size} pixels, got {pixels.shape[-2]}x{pixels.shape[-1]}")
        x = pixels.to(self.patch_embed.weight.dtype)
        x = self.patch_embed(self.stem(x) if self.stem is not None else x).flatten(2).transpose(1, 2)
        if self.class_embedding is not None:
            x = torch.cat([self.class_embedding.expand(x.shape[0], 1, -1), x], dim=1)
        x = x + self.position_embedding
        if patch_keep is not None:
            prefix = int(self.class_embedding is not None)
            index = (patch_keep.to(x.device) + prefix).unsqueeze(-1).expand(-1, -1, x.shape[-1])
            x = torch.cat([x[:, :prefix], x.gather(1, index)], dim=1)
        return self.pre_norm(x)

    def hidden_states(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        """The input of every block and the final block output, before any post-norm (for projectors)."""
        return self.transformer(self.embed(pixels), return_layers=True)  # type: ignore[return-value]

    def encode_tokens(self, pixels: torch.Tensor, patch_keep: torch.Tensor | None = None) -> torch.Tensor:
        """The last block's output (B, prefix + K, width), before any post-norm."""
        return self.transformer(self.embed(pixels, patch_keep))  # type: ignore[return-value]

    def forward(self, pixels: torch.Tensor, patch_keep: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled image vector (B, width), before any projection, over the kept patches only."""
        tokens = self.encode_tokens(pixels, patch_keep)
        if self.config.post_norm == "all":
            tokens = self.post_norm(tokens)
        if self.config.pooling == "cls":
            pooled = tokens[:, 0]
        elif self.config.pooling == "mean":
            pooled = tokens[:, int(self.config.class_token) :].mean(dim=1)
        else:
            pooled = self.head(tokens)  # type: ignore[misc]
        return self.post_norm(pooled) if self.config.post_norm == "pooled" else pooled
