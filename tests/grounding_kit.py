"""Helpers for the grounding tests: a tiny VLM with location tokens, scripted answers, a mask codec."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from tiny_vlm import tiny_vlm
from vlmkit.processing.locations import add_location_tokens
from vlmkit.training.vocabulary import grow_vocabulary


def grounding_vlm():
    """``tiny_vlm`` with the 1024 + 128 location and mask tokens and the rows for them."""
    model = tiny_vlm()
    add_location_tokens(model.tokenizer)
    grow_vocabulary(model.decoder, model.tokenizer.vocab_size)
    return model


class GridCodec:
    """A stand-in mask tokenizer with the interface of ``MaskTokenizer``: each of the 4x4 cells of a 64x64
    mask is one code, its coverage in 128 steps (exact for masks made of whole cells)."""

    def encode(self, masks: torch.Tensor) -> torch.Tensor:
        cells = F.avg_pool2d(masks.float()[:, None], 16)[:, 0]
        return (cells * 127).round().long().reshape(len(masks), 16)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        cells = (codes.float() / 127).reshape(len(codes), 1, 4, 4)
        return F.interpolate(cells, scale_factor=16, mode="nearest")[:, 0]


def script(monkeypatch, module, answer: Callable[[str], str]) -> list[str]:
    """Make ``module.respond`` answer each prompt with ``answer(prompt text)``; returns the prompts seen."""
    seen: list[str] = []

    def respond(model, prompts: Sequence[Sequence[int]], images=(), config=None) -> list[str]:
        texts = [model.tokenizer.decode(ids) for ids in prompts]
        seen.extend(texts)
        return [answer(text) for text in texts]

    monkeypatch.setattr(module, "respond", respond)
    return seen
