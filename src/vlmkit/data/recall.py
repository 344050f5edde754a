"""Text-only lookup tasks, as chats: multi-query associative recall, and questions about a scene written out.

Why: a decoder trained from scratch does not learn to look an object up in its context (find the star, read
its colour) in thousands of steps, from image tokens or from the scene as perfect text, while a pretrained
one does in a hundred (docs/results.md, "Reading the image"). These tasks are cheap and text-only, so a
decoder can learn the lookup before it has to learn to read images.

- **MQAR** (multi-query associative recall; Arora et al. 2023, "Zoology"): key-value pairs, then keys
  asked back one per turn, each answered by its value. The keys of one example are distinct, the values
  need not be.
- **Text scene**: a record's canonical caption (every object by size, colour and shape, in order) in place
  of its image, then its questions.

Both are chats whose first user turn holds the context before the first question (``question_messages``),
the shape the VLM recipes give the image.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from vlmkit.data.records import Record
from vlmkit.errors import ConfigError, InputError

Messages = list[dict[str, str]]

KEYS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")  # one token each in a byte-level BPE
VALUES = tuple("0123456789")
# A key asked mid-sentence, as it is written among the pairs: a byte-level BPE gives a word at the start of a
# line (the first question follows the context's newline) a different token than after a space.
QUERY = "what is {key}?"


@dataclass(frozen=True)
class RecallExample:
    """One MQAR example: the pairs in the order they are written, and the keys asked back."""

    pairs: tuple[tuple[str, str], ...]
    queries: tuple[str, ...]

    @property
    def answers(self) -> tuple[str, ...]:
        values = dict(self.pairs)
        return tuple(values[key] for key in self.queries)

    @property
    def context(self) -> str:
        return " ".join(f"{key} {value}" for key, value in self.pairs)


def mqar(
    rng: random.Random, pairs: int, queries: int, keys: Sequence[str] = KEYS, values: Sequence[str] = VALUES
) -> RecallExample:
    """``pairs`` distinct keys with random values, and ``queries`` distinct keys of them asked back in random
    order."""
    if not 1 <= pairs <= len(keys):
        raise ConfigError(f"recall pairs: expected 1 to {len(keys)} (the distinct keys there are), got {pairs}")
    if not 1 <= queries <= pairs:
        raise ConfigError(f"recall queries: expected 1 to {pairs} (one per pair at most), got {queries}")
    chosen = rng.sample(list(keys), pairs)
    example = tuple((key, rng.choice(values)) for key in chosen)
    return RecallExample(example, tuple(rng.sample(chosen, queries)))


def question_messages(context: str, turns: Sequence[tuple[str, str]]) -> Messages:
    """A chat of (question, answer) turns with ``context`` (a scene, pairs, or the image token) before the
    first question."""
    messages: Messages = []
    for number, (question, answer) in enumerate(turns):
        content = f"{context}\n{question}" if number == 0 else question
        messages += [{"role": "user", "content": content}, {"role": "assistant", "content": answer}]
    return messages


def recall_messages(example: RecallExample) -> Messages:
    turns = [(QUERY.format(key=key), value) for key, value in zip(example.queries, example.answers, strict=True)]
    return question_messages(example.context, turns)


def scene_text(record: Record) -> str:
    """The record's canonical caption, the scene written out (ShapesWorld's first caption)."""
    if not record.captions:
        raise InputError(f"{record.image}: a text scene needs a caption to write the scene from")
    return record.captions[0]


def text_scene_messages(
    record: Record, rng: random.Random, questions: int, types: Sequence[str] | None = None
) -> Messages:
    """Up to ``questions`` of the record's questions (of ``types``, default all) about its scene as text."""
    qas = [qa for qa in record.qa or [] if types is None or qa.type in types]
    chosen = rng.sample(qas, min(questions, len(qas)))
    return question_messages(scene_text(record), [(qa.question, qa.answer) for qa in chosen])
