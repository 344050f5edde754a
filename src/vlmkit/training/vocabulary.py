"""Room for new tokens: a decoder's embedding (and output head) grown to its tokenizer's size.

A recipe that teaches new tokens (location and mask tokens for grounding) adds them to the tokenizer
first; the decoder then needs a row per new id. New rows start at the mean of the existing ones (plus
small noise, so they are told apart): a fresh token then begins with the average logit instead of a
random one that could dominate or vanish, the usual initialisation when vocabularies grow (as in
``transformers``' ``resize_token_embeddings(mean_resizing=True)``).

Tokens that stand for ordered values (PaliGemma's 1024 location bins) can instead start on a smooth curve
(``order_rows``): neighbouring bins begin with nearly the same row and far ones with unrelated rows, so a
hidden state pulled towards the right bin also raises its neighbours. A near miss then earns part of the
probability, and a bin that a dataset never asks for (a 64 px image uses 65 of the 1024) lies between
trained ones instead of staying at the mean.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vlmkit.errors import ConfigError
from vlmkit.models import Decoder

ORDER_FREQUENCIES = 8
"""Sinusoid pairs of an ordered row: periods from twice the whole range down to 32 neighbouring ids."""


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


def order_rows(decoder: Decoder, ids: torch.Tensor, reference: int, seed: int = 0) -> None:
    """Re-initialise the rows of ``ids`` (ordered values, e.g. location bins 0..n-1) as a smooth curve.

    Rows ``0..reference-1`` (the vocabulary before it grew) set the size: row ``i`` is their mean plus
    ``sin``/``cos`` of ``v = i / (n - 1)`` at geometric frequencies (``ORDER_FREQUENCIES`` of them, from pi
    to pi * n / 16), sent through a fixed random orthonormal projection and scaled to their mean distance
    from that mean. So the rows look like tokens of the vocabulary in size, and their cosines follow ``v``'s
    distance. Both the embedding and an untied output head get it (a tied head shares the embedding's rows).
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.numel() < 2 or int(ids.max()) >= decoder.config.vocab_size or int(ids.min()) < reference:
        raise ConfigError(
            f"order_rows: needs at least 2 ids in {reference}..{decoder.config.vocab_size - 1} (rows added after "
            f"the {reference} that set their size)"
        )
    if reference < 2:
        raise ConfigError(f"order_rows: needs at least 2 reference rows to take a size from, got {reference}")
    generator = torch.Generator().manual_seed(seed)
    weights = [decoder.embed.weight] + ([decoder.lm_head.weight] if decoder.lm_head is not None else [])
    width = weights[0].shape[1]
    if width < 2 * ORDER_FREQUENCIES:
        raise ConfigError(f"order_rows: width {width} is below the {2 * ORDER_FREQUENCIES} features of a row")
    values = torch.linspace(0, 1, len(ids)).unsqueeze(1)
    frequencies = torch.pi * torch.logspace(0, math.log10(max(len(ids) / 16, 1.0)), ORDER_FREQUENCIES)
    features = torch.cat([torch.sin(values * frequencies), torch.cos(values * frequencies)], 1)
    features = features / math.sqrt(ORDER_FREQUENCIES)  # unit norm: sin^2 + cos^2 = 1 per frequency
    projection, _ = torch.linalg.qr(torch.randn(width, 2 * ORDER_FREQUENCIES, generator=generator))
    curve = features @ projection.T
    with torch.no_grad():
        for weight in weights:
            others = weight[:reference].float()
            mean = others.mean(0, keepdim=True)
            radius = (others - mean).norm(dim=1).mean()
            weight[ids] = (mean + radius * curve).to(weight.device, weight.dtype)
