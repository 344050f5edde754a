"""Language model of the Llama family (Gemma by config), or a BERT turned decoder (see ``DecoderConfig``), with a
static KV cache.

One ``forward`` serves training (whole sequences, no cache), prefill (a prompt into an empty or
partly filled cache) and decoding (one token per row into the cache). The attention mask is built
once per call, never per layer, and in the common cases not at all: an unpadded prompt uses SDPA's
own causal kernel, and an unpadded decoding step needs no mask (a new token may see every cached
one). Padding (left, for batched generation) is remembered by the cache, so decoding steps read
their mask as a view of it. A prefix-LM decoder (``attention="prefix"``) reads each prefill
bidirectionally; in training ``answer_blocks`` of the labels say which tokens form one block.

Training computes the output head only where a label is (``answer_loss``): a BERT vocabulary has
30,522 rows, and the head over every prompt position would cost as much as the blocks.
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
from vlmkit.nn.block import DecoderBlock, TransformerBlock
from vlmkit.nn.embedding import ScaledEmbedding
from vlmkit.nn.kv_cache import KVCache
from vlmkit.nn.mlp import activation
from vlmkit.nn.norms import RMSNorm
from vlmkit.nn.rope import RotaryEmbedding
from vlmkit.processing.chat import IGNORE_INDEX

if TYPE_CHECKING:
    from vlmkit.models.generation import GenerationConfig
    from vlmkit.processing.text import TextTokenizer


class PredictionHeadTransform(nn.Module):
    """BERT's ``dense -> act -> LayerNorm`` before the output matrix (its ``cls.predictions.transform``)."""

    def __init__(self, width: int, act: str, norm_eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(width, width)
        self.act = activation(act)
        self.norm = nn.LayerNorm(width, eps=norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act(self.dense(x)))


class Decoder(nn.Module):
    """Token embedding, blocks, final norm and output head (tied or not), in the config's ``family``.

    ``tokenizer`` is set by ``from_pretrained`` when the directory has one; a bare model has None. ``rope``
    replaces the config's rotary embedding (Qwen2-VL's M-RoPE sections, which its VLM config holds).
    """

    def __init__(self, config: DecoderConfig, rope: RotaryEmbedding | None = None) -> None:
        super().__init__()
        self.config = config
        self.embed = (
            ScaledEmbedding(config.vocab_size, config.width, config.width**0.5)
            if config.embed_scale
            else nn.Embedding(config.vocab_size, config.width)
        )
        bert = config.family == "bert"
        unit_offset = config.norm == "rms_unit_offset"
        self.blocks = nn.ModuleList(
            TransformerBlock(config.width, config.heads, config.mlp_dim, config.act, config.norm_eps, post_norm=True)
            if bert
            else DecoderBlock(
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
                norm_unit_offset=unit_offset,
            )
            for _ in range(config.layers)
        )
        if bert:
            self.position_embedding = nn.Parameter(torch.zeros(config.max_positions, config.width))
            self.token_type_embedding = nn.Embedding(config.type_vocab_size, config.width)
            self.embedding_norm = nn.LayerNorm(config.width, eps=config.norm_eps)
            self.head_transform = PredictionHeadTransform(config.width, config.act, config.norm_eps)
            self.output_bias = nn.Parameter(torch.zeros(config.vocab_size))
        # A post-norm stack ends normalised; a pre-norm one needs its final RMSNorm.
        self.norm: nn.Module = (
            nn.Identity() if bert else RMSNorm(config.width, eps=config.norm_eps, unit_offset=unit_offset)
        )
        # Tied: no second module, so the state dict holds the matrix once (safetensors refuses aliases).
        self.lm_head = None if config.tie_embeddings else nn.Linear(config.width, config.vocab_size, bias=False)
        self.rope = None if bert else rope or RotaryEmbedding(config)
        self.gradient_checkpointing = False
        self.tokenizer: TextTokenizer | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal(0, 0.02) weights, zero biases and unit norm scales (Gemma's: zero offsets from one): the
        Llama, Gemma and BERT initialisation."""
        for module in self.modules():
            if isinstance(module, RMSNorm):
                (nn.init.zeros_ if module.unit_offset else nn.init.ones_)(module.weight)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        if self.config.family == "bert":
            nn.init.normal_(self.position_embedding, std=0.02)
            nn.init.zeros_(self.output_bias)

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
        self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None, **options: Any
    ) -> torch.Tensor:
        """Logits ``(B, L, vocab)`` (``(B, 1, vocab)`` with ``last_only``) for the new tokens; the arguments
        are those of ``hidden_states``."""
        return self.head(self.hidden_states(input_ids, attention_mask, **options))

    def hidden_states(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
        segments: torch.Tensor | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """What ``forward`` feeds the output head: the last block's states ``(B, L, width)``.

        ``input_ids`` (B, L) or ``inputs_embeds`` (B, L, width) are the new tokens; ``attention_mask``
        (B, L) marks their real tokens with 1 and padding with 0 (a cache remembers earlier ones).
        ``position_ids`` (B, L; or M-RoPE's (3, B, L), see ``vlmkit.nn.rope``) default to each row's count of
        real tokens so far, so left padding does not shift positions; they start at ``config.position_offset``.
        With ``cache`` the tokens are appended after its ``length`` positions.
        ``segments`` (B, L, nondecreasing; see ``answer_blocks``) are a prefix-LM's attention blocks.
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
        if position_ids is None:
            positions = _shifted(self._positions(attention_mask, cache, length), self.config.position_offset)
        else:
            positions = position_ids
        extra = {}
        if self.rope is not None:
            extra["rope"] = self.rope(positions, x.device, x.dtype)
        else:  # BERT: absolute positions and segment 0 added, then the embedding LayerNorm
            x = self.embedding_norm(x + self.position_embedding[positions] + self.token_type_embedding.weight[0])
        if cache is not None:
            cache.append(attention_mask, length)  # layers write at ``start``; the mask reads the validity
        if self.config.attention == "prefix":
            mask, is_causal = _prefix_mask(attention_mask, cache, start, length, segments), False
        else:
            mask, is_causal = self._mask(attention_mask, cache, start, length)
        for index, block in enumerate(self.blocks):
            layer_cache = cache.layer(index) if cache is not None else None
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, mask=mask, is_causal=is_causal, use_reentrant=False, **extra)
            else:
                x = block(x, mask=mask, is_causal=is_causal, cache=layer_cache, start=start, **extra)
        return self.norm(x[:, -1:] if last_only else x)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits for final hidden states of any leading shape."""
        if self.config.family == "bert":
            return F.linear(self.head_transform(hidden), self.output_weight, self.output_bias)
        return F.linear(hidden, self.output_weight)

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


def _shifted(positions: torch.Tensor | slice, offset: int) -> torch.Tensor | slice:
    """Positions moved ``offset`` later (PaliGemma counts from 1)."""
    if not offset:
        return positions
    if isinstance(positions, slice):
        return slice(positions.start + offset, positions.stop + offset)
    return positions + offset


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the positions whose label is not ``IGNORE_INDEX`` (-100).

    Position ``t`` predicts label ``t + 1``; the loss is taken in float32 whatever the logits' dtype.
    """
    shifted = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    return F.cross_entropy(shifted, labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)


def answer_blocks(labels: torch.Tensor) -> torch.Tensor:
    """Prefix-LM attention blocks (B, L) from training labels: every labelled token is a block of its own,
    and each run of unlabelled tokens (a prompt) one block, so a prompt is read bidirectionally but never
    sees the answer that follows it."""
    labelled = labels != IGNORE_INDEX
    starts = labelled.clone()
    starts[:, 1:] |= labelled[:, :-1]
    return starts.long().cumsum(-1)


def _prefix_mask(
    attention_mask: torch.Tensor | None,
    cache: KVCache | None,
    start: int,
    length: int,
    segments: torch.Tensor | None,
) -> torch.Tensor | None:
    """The boolean mask (B, 1, L, start + L) of a prefix-LM, or None where every key may be seen.

    A token sees every cached position, and the new tokens of its own or an earlier segment (without
    ``segments``, all new tokens are one segment: a prefill, or a decoding step). As in the causal mask,
    each position may always see itself, so padding never attends to nothing.
    """
    end = start + length
    keys = cache.valid[:, :end] if cache is not None else attention_mask
    if segments is None:
        if keys is None or bool(keys.all()):
            return None
        allowed = keys.bool()[:, None, :].expand(-1, length, -1)
    else:
        earlier = segments[:, None, :] <= segments[:, :, None]
        allowed = torch.cat([earlier.new_ones(earlier.shape[0], length, start), earlier], dim=-1)
        if keys is not None:
            allowed = allowed & keys.bool()[:, None, :]
    itself = torch.zeros(length, end, dtype=torch.bool, device=allowed.device)
    itself[:, start:] = torch.eye(length, dtype=torch.bool, device=allowed.device)
    return (allowed | itself)[:, None]


def answer_loss(decoder: Decoder, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``causal_lm_loss`` from final hidden states, with the output head run only where a label is."""
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    logits = decoder.head(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), targets[keep])
