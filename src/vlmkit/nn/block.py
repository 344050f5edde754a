"""The pre-LayerNorm transformer block, a stack of them, and the Llama-family decoder block."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from vlmkit.nn.attention import Attention
from vlmkit.nn.mlp import MLP, GatedMLP
from vlmkit.nn.norms import RMSNorm


class TransformerBlock(nn.Module):
    """``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``, as in CLIP, SigLIP and ViT.

    ``post_norm=True`` is BERT's order instead: ``norm1(x + attn(x))`` then ``norm2(x + mlp(x))``.
    """

    def __init__(self, dim: int, heads: int, mlp_dim: int, act: str, norm_eps: float, post_norm: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MLP(dim, mlp_dim, act)
        self.post_norm = post_norm

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        """``cache``/``start`` as in ``Attention``: a BERT-family decoder generates with a KV cache too."""
        if self.post_norm:
            x = self.norm1(x + self.attn(x, mask=mask, is_causal=is_causal, cache=cache, start=start))
            return self.norm2(x + self.mlp(x))
        x = x + self.attn(self.norm1(x), mask=mask, is_causal=is_causal, cache=cache, start=start)
        return x + self.mlp(self.norm2(x))


class TransformerStack(nn.Module):
    """Blocks applied in order; ``gradient_checkpointing`` trades compute for activation memory."""

    def __init__(
        self, layers: int, dim: int, heads: int, mlp_dim: int, act: str, norm_eps: float, post_norm: bool = False
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, heads, mlp_dim, act, norm_eps, post_norm) for _ in range(layers)
        )
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


class DecoderBlock(nn.Module):
    """The Llama block: ``x + attn(rmsnorm(x))`` with rotary embeddings, then ``x + swiglu(rmsnorm(x))``.

    Gemma's is the same with GeGLU (``act="gelu_tanh"``) and its RMSNorm flavour (``norm_unit_offset``).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        kv_heads: int,
        head_dim: int,
        mlp_dim: int,
        act: str,
        norm_eps: float,
        qkv_bias: bool = False,
        out_bias: bool = False,
        mlp_bias: bool = False,
        norm_unit_offset: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = RMSNorm(dim, eps=norm_eps, unit_offset=norm_unit_offset)
        self.attn = Attention(dim, heads, kv_heads, bias=qkv_bias, out_bias=out_bias, head_dim=head_dim)
        self.norm2 = RMSNorm(dim, eps=norm_eps, unit_offset=norm_unit_offset)
        self.mlp = GatedMLP(dim, mlp_dim, act, bias=mlp_bias)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask=mask, is_causal=is_causal, rope=rope, cache=cache, start=start)
        return x + self.mlp(self.norm2(x))
