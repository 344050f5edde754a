"""Transformer text encoder in the CLIP, SigLIP and BERT flavours (see ``TextConfig``)."""

from __future__ import annotations

import torch
from torch import nn

from vlmkit.config import TextConfig
from vlmkit.nn import TransformerStack


class TextTransformer(nn.Module):
    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.position_embedding = nn.Parameter(torch.zeros(config.context_length, config.width))
        post = config.norm_position == "post"
        # BERT: a token-type row added everywhere, a LayerNorm on the embeddings, post-LN blocks whose
        # last norm already ends the stack (so no final LayerNorm).
        self.token_type_embedding = (
            nn.Embedding(config.type_vocab_size, config.width) if config.type_vocab_size else None
        )
        self.embedding_norm = nn.LayerNorm(config.width, eps=config.norm_eps) if config.embedding_norm else None
        self.transformer = TransformerStack(
            config.layers, config.width, config.heads, config.mlp_dim, config.act, config.norm_eps, post_norm=post
        )
        self.final_norm = nn.Identity() if post else nn.LayerNorm(config.width, eps=config.norm_eps)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding, std=0.01)

    def _mask(self, attention_mask: torch.Tensor | None, length: int) -> torch.Tensor | None:
        """Boolean (B, 1, L, L) mask, True where attending is allowed; None when SDPA's own will do.

        Under a causal mask, right padding cannot change any real token (real tokens never look
        ahead at it), so the explicit mask is dropped and SDPA runs its faster causal kernel.
        """
        if attention_mask is None:
            return None
        keys = attention_mask.bool()
        if self.config.causal and bool((keys[:, 1:] <= keys[:, :-1]).all()):
            return None
        keys = keys[:, None, None, :]
        if self.config.causal:
            causal = torch.ones(length, length, dtype=torch.bool, device=keys.device).tril()
            return keys & causal
        return keys

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled text vector (B, width), before any projection."""
        if input_ids.ndim != 2:
            raise ValueError(f"expected input_ids of shape (B, L), got {tuple(input_ids.shape)}")
        length = input_ids.shape[1]
        if length > self.config.context_length:
            raise ValueError(f"text of {length} tokens exceeds context_length {self.config.context_length}")
        x = self.token_embedding(input_ids) + self.position_embedding[:length]
        if self.token_type_embedding is not None:
            x = x + self.token_type_embedding.weight[0]  # one text per input: segment 0 throughout
        if self.embedding_norm is not None:
            x = self.embedding_norm(x)
        x = self.transformer(x, mask=self._mask(attention_mask, length), is_causal=self.config.causal)
        x = self.final_norm(x)
        rows = torch.arange(x.shape[0], device=x.device)
        if self.config.pooling == "last":
            return x[:, -1]
        if self.config.pooling == "mean":
            weights = torch.ones_like(input_ids) if attention_mask is None else attention_mask
            weights = weights.to(x.dtype)[..., None]
            return (x * weights).sum(1) / weights.sum(1).clamp(min=1)
        if self.config.pool_at_argmax:
            return x[rows, input_ids.argmax(dim=-1)]
        return x[rows, (input_ids == self.config.eos_token_id).int().argmax(dim=-1)]
