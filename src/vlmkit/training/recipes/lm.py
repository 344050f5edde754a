"""``lm``: a small decoder, and its BPE tokenizer with an ``<image>`` token reserved, trained on a dataset's
text alone, as chat turns: captions as answers to ``CAPTION_PROMPT``, questions with their answers,
multiple-choice questions with their letters. It learns the language and the format, so the VLM stages
only have to learn to look. ``task="recall"`` mixes in text-only lookup (``data.recall``: MQAR, and questions
about the scene written out), so a decoder trained from scratch can learn in-context lookup before images.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from vlmkit.config import tiny_decoder_config
from vlmkit.config.base import option
from vlmkit.data.recall import KEYS, mqar, question_messages, recall_messages, scene_text, text_scene_messages
from vlmkit.data.records import Record, RecordDataset
from vlmkit.data.sources import scan_records
from vlmkit.errors import ConfigError, InputError
from vlmkit.models import Decoder
from vlmkit.processing.chat import CAPTION_PROMPT, IMAGE_TOKEN, ChatEncoder
from vlmkit.processing.text import train_bpe_tokenizer
from vlmkit.tasks.chat import chat_encoder
from vlmkit.training.answer_match import exact_answers
from vlmkit.training.objective import Prepared
from vlmkit.training.objectives import NextTokenObjective
from vlmkit.training.recipes.chat import ChatBatches, ConversationRecipe, Messages, conversation, has_text

TASKS = ("chat", "recall")


@dataclass
class LmRecipe(ConversationRecipe):
    """A decoder and tokenizer from a dataset's text."""

    name: ClassVar[str] = "lm"
    summary: ClassVar[str] = "a small decoder (and tokenizer) on a dataset's text, as chat turns"

    vocab_size: int = option(1024, "size of the tokenizer trained on the text")
    task: str = option(
        "chat",
        "`chat`: the dataset's conversations; `recall`: a third each of MQAR, questions on the scene as text, chats",
    )
    recall_pairs: int = option(8, "task recall: the most key-value pairs of an MQAR example", research=True)

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.task not in TASKS:
            raise ConfigError(f"{where}.task: expected one of {', '.join(TASKS)}, got {self.task!r}")
        if self.eval_data and self.task != "recall":
            raise ConfigError(f"{where}.eval_data: only task recall has a held-out evaluation (lookup accuracy)")
        if not 1 <= self.recall_pairs <= len(KEYS):
            raise ConfigError(f"{where}.recall_pairs: expected 1 to {len(KEYS)}, got {self.recall_pairs}")

    def messages(self, record: Record, rng: random.Random) -> Messages:
        if self.task == "recall":
            kind = rng.randrange(3)
            if kind == 0:
                pairs = rng.randint(1, self.recall_pairs)
                return recall_messages(mqar(rng, pairs, pairs))
            if kind == 1 and record.captions and record.qa:
                return text_scene_messages(record, rng, max(1, self.questions_per_turn))
        return super().messages(record, rng)

    def prepare(self) -> Prepared:
        records = scan_records(self.data, has_text)[0]
        if not records:
            raise InputError(f"{self.data}: no records with captions or questions")
        torch.manual_seed(self.train.seed)
        rng = random.Random(0)
        texts = [m["content"] for r in records[:20_000] for m in conversation(r, rng, 100)]
        texts += ["User:", "Assistant:", CAPTION_PROMPT, IMAGE_TOKEN]
        if self.task == "recall":
            texts += [recall_messages(mqar(rng, self.recall_pairs, 1))[0]["content"] for _ in range(1000)]
        tokenizer = train_bpe_tokenizer(texts, self.vocab_size, special_tokens=[IMAGE_TOKEN], max_length=1024)
        config = tiny_decoder_config(tokenizer.vocab_size, tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id)  # type: ignore[arg-type]
        decoder = Decoder(config)
        decoder.tokenizer = tokenizer
        encoder = chat_encoder(decoder)
        batches = ChatBatches(
            records,
            None,
            encoder,
            self.messages,
            self.train.seed,
            self.max_length,
            decoder,
            curriculum=self.data_curriculum(records),
        )
        evaluate = lookup_evaluation(encoder, self.recall_pairs, self.eval_data, self.eval_images, self.train.seed)
        return Prepared(decoder, NextTokenObjective(), batches, evaluate if self.task == "recall" else None)


def lookup_evaluation(
    encoder: ChatEncoder, pairs: int, eval_data: str | None, images: int, seed: int
) -> Callable[[nn.Module], dict[str, float]]:
    """Held-out lookup accuracy (%): MQAR with ``pairs`` pairs, one query per example, and, with ``eval_data``,
    each question about its first ``images`` records' scenes as text, per question type (``@1``: one object)."""
    rng = random.Random(f"held-out/{seed}")
    chats = {"mqar": [recall_messages(mqar(rng, pairs, 1)) for _ in range(256)]}
    records = RecordDataset(eval_data).records[:images] if eval_data else []
    for record in (r for r in records if r.captions):
        for qa in record.qa or []:
            kind = f"scene_{qa.type}" + ("@1" if len(record.objects or []) == 1 else "")
            chats.setdefault(kind, []).append(question_messages(scene_text(record), [(qa.question, qa.answer)]))

    def evaluate(model: nn.Module) -> dict[str, float]:
        scores = {}
        for kind, group in chats.items():
            hits = exact_answers(model, encoder, group)
            scores[f"{kind}_accuracy"] = 100 * sum(hits) / len(hits)
        return scores

    return evaluate
