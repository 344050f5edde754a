"""Room for new tokens: a decoder's embedding (and output head) grown to its tokenizer's size.

A recipe that teaches new tokens (location and mask tokens for grounding) adds them to the tokenizer
first; the decoder then needs a row per new id. New rows start at the mean of the existing ones (plus
small noise, so they are told apart): a fresh token then begins with the average logit instead of a
random one that could dominate or vanish, the usual initialisation when vocabularies grow (as in
``transformers``' ``resize_token_embeddings(mean_resizing=True)``).
"""

from __future__ import annotations

import torch
from torch import nn

from vlmkit.errors import ConfigError
from vlmkit.models import Decoder


def grow_vocabulary(decoder: Decoder, size: int, seed: int = 0) -> int:
    """Give ``decoder`` ``size`` token rows (embedding, untied head, BERT output bias); returns rows added.

    The decoder's config (shared with its VLM's) records the new ``vocab_size``, so the model saves and
    reloads with it. Shrinking is refused: ids in use would lose their rows.
    """
    old = decoder.config.vocab_size
    if size < old:
        raise ConfigError(f"vocab_size: the tokenizer has {size} tokens but the decoder already has {old} rows")
    if size == old:
        return 0
    generator = torch.Generator().manual_seed(seed)
    decoder.embed = _grown_embedding(decoder.embed, size, generator)
    if decoder.lm_head is not None:
        decoder.lm_head = _grown_linear(decoder.lm_head, size, generator)
    if getattr(decoder, "output_bias", None) is not None:
        bias = decoder.output_bias.data
        decoder.output_bias = nn.Parameter(torch.cat([bias, bias.new_full((size - old,), float(bias.mean()))]))
    decoder.config.vocab_size = size
    return size - old


def _new_rows(weight: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    mean = weight.float().mean(0, keepdim=True)
    noise = torch.randn(count, weight.shape[1], generator=generator) * weight.float().std() * 0.1
    return (mean + noise).to(weight.dtype)


def _grown_embedding(embed: nn.Embedding, size: int, generator: torch.Generator) -> nn.Embedding:
    weight = embed.weight.data
    grown = nn.Embedding(size, weight.shape[1], device=weight.device, dtype=weight.dtype)
    grown.weight.data = torch.cat([weight, _new_rows(weight, size - len(weight), generator).to(weight.device)])
    grown.weight.requires_grad_(embed.weight.requires_grad)
    return grown


def _grown_linear(head: nn.Linear, size: int, generator: torch.Generator) -> nn.Linear:
    weight = head.weight.data
    grown = nn.Linear(weight.shape[1], size, bias=False, device=weight.device, dtype=weight.dtype)
    grown.weight.data = torch.cat([weight, _new_rows(weight, size - len(weight), generator).to(weight.device)])
    grown.weight.requires_grad_(head.weight.requires_grad)
    return grown
