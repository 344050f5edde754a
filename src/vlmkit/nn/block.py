"""The pre-LayerNorm transformer block and a stack of them."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from vlmkit.nn.attention import Attention
from vlmkit.nn.mlp import MLP


class TransformerBlock(nn.Module):
    """``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``, as in CLIP, SigLIP and ViT."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, act: str, norm_eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MLP(dim, mlp_dim, act)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask=mask, is_causal=is_causal)
        return x + self.mlp(self.norm2(x))


class TransformerStack(nn.Module):
    """Blocks applied in order; ``gradient_checkpointing`` trades compute for activation memory."""

    def __init__(self, layers: int, dim: int, heads: int, mlp_dim: int, act: str, norm_eps: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_dim, act, norm_eps) for _ in range(layers))
        self.gradient_checkpointing = False

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, is_causal: bool = False, return_layers: bool = False
    ) -> torch.Tensor | list[torch.Tensor]:
        """Run every block; with ``return_layers`` also return each block's input and the final output."""
        states = [x]
        for block in self.blocks:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, mask, is_causal, use_reentrant=False)
            else:
                x = block(x, mask=mask, is_causal=is_causal)
            if return_layers:
                states.append(x)
        return states if return_layers else x
