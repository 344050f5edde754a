"""``lm``: a small decoder, and its BPE tokenizer with an ``<image>`` token reserved, trained on a dataset's
text alone, as chat turns: captions as answers to ``CAPTION_PROMPT``, questions with their answers,
multiple-choice questions with their letters. It learns the language and the format, so the VLM stages
only have to learn to look.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

import torch

from vlmkit.config import tiny_decoder_config
from vlmkit.config.base import option
from vlmkit.data.sources import scan_records
from vlmkit.errors import ConfigError, InputError
from vlmkit.models import Decoder
from vlmkit.processing.chat import CAPTION_PROMPT, IMAGE_TOKEN
from vlmkit.processing.text import train_bpe_tokenizer
from vlmkit.tasks.chat import chat_encoder
from vlmkit.training.objective import Prepared
from vlmkit.training.objectives import NextTokenObjective
from vlmkit.training.recipes.chat import ChatBatches, ConversationRecipe, conversation, has_text


@dataclass
class LmRecipe(ConversationRecipe):
    """A decoder and tokenizer from a dataset's text."""

    name: ClassVar[str] = "lm"
    summary: ClassVar[str] = "a small decoder (and tokenizer) on a dataset's text, as chat turns"

    vocab_size: int = option(1024, "size of the tokenizer trained on the text")

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.eval_data:
            raise ConfigError(f"{where}.eval_data: the lm recipe has no held-out evaluation")

    def prepare(self) -> Prepared:
        records = scan_records(self.data, has_text)[0]
        if not records:
            raise InputError(f"{self.data}: no records with captions or questions")
        torch.manual_seed(self.train.seed)
        rng = random.Random(0)
        texts = [m["content"] for r in records[:20_000] for m in conversation(r, rng, 100)]
        texts += ["User:", "Assistant:", CAPTION_PROMPT, IMAGE_TOKEN]
        tokenizer = train_bpe_tokenizer(texts, self.vocab_size, special_tokens=[IMAGE_TOKEN], max_length=1024)
        config = tiny_decoder_config(tokenizer.vocab_size, tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id)  # type: ignore[arg-type]
        decoder = Decoder(config)
        decoder.tokenizer = tokenizer
        batches = ChatBatches(
            records, None, chat_encoder(decoder), self.messages, self.train.seed, self.max_length, decoder
        )
        return Prepared(decoder, NextTokenObjective(), batches)
