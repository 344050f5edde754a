"""The one attention module of vlmkit, on ``F.scaled_dot_product_attention``.

Queries, keys and values come from one fused projection (one matmul instead of three); the
checkpoint converters concatenate separate q/k/v weights into it. Grouped-query attention is the
case ``kv_heads < heads``. Passing ``context`` makes it cross-attention (keys and values from
``context``), which SigLIP's attention-pooling head needs.

Decoders pass ``rope`` (cos and sin tables from ``vlmkit.nn.rope``) to rotate queries and keys, and
``cache`` (one layer's buffers of a ``vlmkit.nn.kv_cache.KVCache``) with ``start``, the position of
the first new token: new keys and values are written into the buffers in place and attention reads
the filled prefix as a view.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlmkit.nn.rope import rotate


class Attention(nn.Module):
    def __init__(
        self,
        dim: int,
        heads: int,
        kv_heads: int | None = None,
        bias: bool = True,
        out_bias: bool | None = None,
        head_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.kv_heads = kv_heads or heads
        if heads % self.kv_heads:
            raise ValueError(f"heads ({heads}) must be a multiple of kv_heads ({self.kv_heads})")
        self.head_dim = head_dim or dim // heads
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
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        """Attend from ``x`` (B, Lq, D) to itself or to ``context`` (B, Lk, D).

        ``mask`` is boolean, True where attention is allowed, broadcastable to (B, heads, Lq, Lk); with
        a cache, Lk counts the cached positions too (``start + Lq``).
        """
        batch, length, _ = x.shape
        q, k, v = self._heads(x, context, rope)
        if cache is not None:
            end = start + length
            cache[0][:, :, start:end] = k
            cache[1][:, :, start:end] = v
            k, v = cache[0][:, :, :end], cache[1][:, :, :end]
        if length == 1 and self.kv_heads != self.heads:
            # One query per row (a decoding step): each key/value head's query group becomes its query
            # "length", one plain attention call without GQA's key/value expansion (~2x faster on CPU).
            group = q.reshape(batch, self.kv_heads, self.heads // self.kv_heads, self.head_dim)
            y = F.scaled_dot_product_attention(group, k, v, attn_mask=mask).reshape(batch, self.q_dim)
            return self.out(y[:, None])
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=is_causal and mask is None, enable_gqa=self.kv_heads != self.heads
        )
        return self.out(y.transpose(1, 2).reshape(batch, length, self.q_dim))

    def _heads(
        self, x: torch.Tensor, context: torch.Tensor | None, rope: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values as (B, heads, L, head_dim) views; rotary applied to q and k at once."""
        batch, length, _ = x.shape
        if context is None and rope is None and self.heads == self.kv_heads:
            # unbind's backward stacks the three gradients into one buffer; slicing would zero-fill and
            # copy a full-size buffer per slice, which costs ~5% of a ViT training step.
            q, k, v = self.qkv(x).view(batch, length, 3, self.heads, self.head_dim).unbind(2)
        elif context is None:
            heads = self.qkv(x).view(batch, length, self.heads + 2 * self.kv_heads, self.head_dim)
            qk, v = heads[:, :, : self.heads + self.kv_heads], heads[:, :, self.heads + self.kv_heads :]
            if rope is not None:
                qk = rotate(qk, *rope)
            q, k = qk[:, :, : self.heads], qk[:, :, self.heads :]  # slices: cheaper than split per step
        else:
            weight, bias = self.qkv.weight, self.qkv.bias
            q_bias, kv_bias = (None, None) if bias is None else (bias[: self.q_dim], bias[self.q_dim :])
            q = F.linear(x, weight[: self.q_dim], q_bias).view(batch, length, self.heads, self.head_dim)
            kv = F.linear(context, weight[self.q_dim :], kv_bias).view(batch, -1, 2 * self.kv_heads, self.head_dim)
            k, v = kv.split([self.kv_heads, self.kv_heads], dim=2)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
