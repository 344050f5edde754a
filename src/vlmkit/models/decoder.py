"""Causal language model of the Llama family (see ``DecoderConfig``), with a static KV cache.

One ``forward`` serves training (whole sequences, no cache), prefill (a prompt into an empty or
partly filled cache) and decoding (one token per row into the cache). The attention mask is built
once per call, never per layer, and in the common cases not at all: an unpadded prompt uses SDPA's
own causal kernel, and an unpadded decoding step needs no mask (a new token may see every cached
one). Padding (left, for batched generation) is remembered by the cache, so decoding steps read
their mask as a view of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from vlmkit.config import DecoderConfig
from vlmkit.errors import InputError
from vlmkit.nn.block import DecoderBlock
from vlmkit.nn.kv_cache import KVCache
from vlmkit.nn.norms import RMSNorm
from vlmkit.nn.rope import RotaryEmbedding
from vlmkit.processing.chat import IGNORE_INDEX

if TYPE_CHECKING:
    from vlmkit.models.generation import GenerationConfig
    from vlmkit.processing.text import TextTokenizer


class Decoder(nn.Module):
    """Token embedding, ``DecoderBlock``s, final RMSNorm and output head (tied or not).

    ``tokenizer`` is set by ``from_pretrained`` when the directory has one; a bare model has None.
    """

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.width)
        self.blocks = nn.ModuleList(
            DecoderBlock(
                config.width,
                config.heads,
                config.kv_heads,
                config.dim_per_head,
                config.mlp_dim,
                config.act,
                config.norm_eps,
                qkv_bias=config.qkv_bias,
                out_bias=config.out_bias,
                mlp_bias=config.mlp_bias,
            )
            for _ in range(config.layers)
        )
        self.norm = RMSNorm(config.width, eps=config.norm_eps)
        # Tied: no second module, so the state dict holds the matrix once (safetensors refuses aliases).
        self.lm_head = None if config.tie_embeddings else nn.Linear(config.width, config.vocab_size, bias=False)
        self.rope = RotaryEmbedding(config)
        self.gradient_checkpointing = False
        self.tokenizer: TextTokenizer | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal(0, 0.02) weights, zero biases and unit norm scales, the Llama initialisation."""
        for module in self.modules():
            if isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)
            elif isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.weight.dtype

    @property
    def output_weight(self) -> torch.Tensor:
        return self.embed.weight if self.lm_head is None else self.lm_head.weight

    def new_cache(self, batch: int, capacity: int) -> KVCache:
        """An empty cache for ``batch`` rows of up to ``capacity`` positions (it grows if needed)."""
        config = self.config
        return KVCache(
            config.layers,
            batch,
            config.kv_heads,
            config.dim_per_head,
            min(capacity, config.max_positions),
            device=self.device,
            dtype=self.dtype,
        )

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Logits ``(B, L, vocab)`` (``(B, 1, vocab)`` with ``last_only``) for the new tokens.

        ``input_ids`` (B, L) or ``inputs_embeds`` (B, L, width) are the new tokens; ``attention_mask``
        (B, L) marks their real tokens with 1 and padding with 0 (a cache remembers earlier ones).
        ``position_ids`` default to each row's count of real tokens so far, so left padding does not
        shift positions. With ``cache`` the tokens are appended after its ``length`` positions.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        x = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        length = x.shape[1]
        start = cache.length if cache is not None else 0
        if start + length > self.config.max_positions:
            raise InputError(
                f"sequence of {start + length} tokens exceeds the decoder's max_positions {self.config.max_positions}"
            )
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None
        if cache is not None:
            cache.reserve(length, limit=self.config.max_positions)
        positions = self._positions(attention_mask, cache, length) if position_ids is None else position_ids
        rope = self.rope(positions, x.device, x.dtype)
        if cache is not None:
            cache.append(attention_mask, length)  # layers write at ``start``; the mask reads the validity
        mask, is_causal = self._mask(attention_mask, cache, start, length)
        for index, block in enumerate(self.blocks):
            layer_cache = cache.layer(index) if cache is not None else None
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, rope, mask, is_causal, use_reentrant=False)
            else:
                x = block(x, rope, mask, is_causal, layer_cache, start)
        if last_only:
            x = x[:, -1:]
        return F.linear(self.norm(x), self.output_weight)

    @staticmethod
    def _positions(attention_mask: torch.Tensor | None, cache: KVCache | None, length: int) -> torch.Tensor | slice:
        if cache is not None:
            return cache.positions(attention_mask, length)
        if attention_mask is None:
            return slice(0, length)
        return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    @staticmethod
    def _mask(
        attention_mask: torch.Tensor | None, cache: KVCache | None, start: int, length: int
    ) -> tuple[torch.Tensor | None, bool]:
        """The boolean attention mask (B or 1, 1, L, start + L) and whether SDPA's causal flag replaces it.

        With a cache, the new positions' validity is already recorded in it. Every position may
        attend to itself even when it is padding: a row with nothing to attend to would make SDPA
        return NaN, and NaN values in padding would poison real rows through the zero-weighted sum.
        """
        end = start + length
        if cache is None:
            if attention_mask is None:
                return None, length > 1
            keys = attention_mask.bool()
            if bool((keys[:, 1:] <= keys[:, :-1]).all()):  # right padding: causal attention never sees it
                return None, True
        else:
            if not cache.padded and (start == 0 or length == 1):
                return None, start == 0 and length > 1
            keys = cache.valid[:, :end]
            if length == 1 and attention_mask is None:  # a decoding step: the cache's validity, viewed
                return keys[:, None, None, :], False
        causal = torch.ones(length, end, dtype=torch.bool, device=keys.device).tril(diagonal=start)
        if cache is not None and not cache.padded:
            return causal, False
        itself = torch.zeros(length, end, dtype=torch.bool, device=keys.device)
        itself[:, start:] = torch.eye(length, dtype=torch.bool, device=keys.device)
        return (causal & (keys[:, None, :] | itself))[:, None], False

    def generate(
        self, prompts: torch.Tensor | Sequence[Sequence[int]], config: GenerationConfig | None = None, **options: Any
    ) -> list[list[int]]:
        """Generated ids per prompt: ``vlmkit.models.generation.generate`` for this decoder."""
        from vlmkit.models.generation import generate

        return generate(self, prompts, config, **options)


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the positions whose label is not ``IGNORE_INDEX`` (-100).

    Position ``t`` predicts label ``t + 1``; the loss is taken in float32 whatever the logits' dtype.
    """
    shifted = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    return F.cross_entropy(shifted, labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)
