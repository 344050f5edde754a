"""The one attention module of vlmkit, on ``F.scaled_dot_product_attention``.

Queries, keys and values come from one fused projection (one matmul instead of three); the
checkpoint converters concatenate separate q/k/v weights into it. Grouped-query attention is the
case ``kv_heads < heads``. Passing ``context`` makes it cross-attention (keys and values from
``context``), which SigLIP's attention-pooling head needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(
        self, dim: int, heads: int, kv_heads: int | None = None, bias: bool = True, out_bias: bool | None = None
    ) -> None:
        super().__init__()
        self.heads = heads
        self.kv_heads = kv_heads or heads
        if heads % self.kv_heads:
            raise ValueError(f"heads ({heads}) must be a multiple of kv_heads ({self.kv_heads})")
        self.head_dim = dim // heads
        self.q_dim = heads * self.head_dim
        self.kv_dim = self.kv_heads * self.head_dim
        self.qkv = nn.Linear(dim, self.q_dim + 2 * self.kv_dim, bias=bias)
        self.out = nn.Linear(self.q_dim, dim, bias=bias if out_bias is None else out_bias)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend from ``x`` (B, Lq, D) to itself or to ``context`` (B, Lk, D).

        ``mask`` is boolean, True where attention is allowed, broadcastable to (B, heads, Lq, Lk).
        """
        batch, length, _ = x.shape
        if context is None:
            q, k, v = self.qkv(x).split([self.q_dim, self.kv_dim, self.kv_dim], dim=-1)
        else:
            weight, bias = self.qkv.weight, self.qkv.bias
            q_bias, kv_bias = (None, None) if bias is None else (bias[: self.q_dim], bias[self.q_dim :])
            q = F.linear(x, weight[: self.q_dim], q_bias)
            k, v = F.linear(context, weight[self.q_dim :], kv_bias).split([self.kv_dim, self.kv_dim], dim=-1)
        q = q.view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        k = k.view(batch, -1, self.kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(batch, -1, self.kv_heads, self.head_dim).transpose(1, 2)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=is_causal and mask is None, enable_gqa=self.kv_heads != self.heads
        )
        return self.out(y.transpose(1, 2).reshape(batch, length, self.q_dim))
