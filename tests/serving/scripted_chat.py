"""A served chat model whose answer is scripted: the real prefill runs (prompt, images, frames), then the
tokens of a given text come out, then EOS. For routes whose behaviour depends on what the model writes
(location tokens, a moment) and that a random tiny model would never write."""

from __future__ import annotations

import torch

import vlmkit.serving.chat as serving_chat
from vlmkit.models.generation import Decoding


def script_chat(monkeypatch, model, answer: str) -> list[Decoding]:
    """Make the chat worker answer ``answer``; returns the decodings run (their ``prompt_embeds`` shapes)."""
    scripted = model.tokenizer.tokenizer.encode(answer, add_special_tokens=False).ids
    eos = model.decoder.config.eos_token_ids[0]
    runs: list[Decoding] = []

    class Scripted(Decoding):
        def __init__(self, decoder, input_ids, attention_mask=None, config=None, **kwargs) -> None:
            super().__init__(decoder, input_ids, attention_mask, config, **kwargs)
            self.prompt_shape = tuple((kwargs.get("inputs_embeds") if kwargs.get("inputs_embeds") is not None
                                       else input_ids).shape)  # fmt: skip
            self.input_ids = input_ids
            runs.append(self)

        def step(self) -> torch.Tensor:
            token = scripted[self.steps] if self.steps < len(scripted) else eos
            self.steps += 1
            return torch.full((len(self.finished),), token)

    monkeypatch.setattr(serving_chat, "Decoding", Scripted)
    return runs
