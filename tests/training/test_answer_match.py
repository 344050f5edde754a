"""Teacher-forced exact match: an answer counts only when every one of its tokens is predicted."""

from __future__ import annotations

import torch
from torch import nn

from tiny_vlm import tiny_chat_tokenizer
from vlmkit.data.recall import question_messages
from vlmkit.processing.chat import TEMPLATES, ChatEncoder
from vlmkit.training.answer_match import exact_answers


class Oracle(nn.Module):
    """Predicts the next token of its input (or, ``wrong_at`` set, that token plus one at that position)."""

    def __init__(self, vocab: int, wrong_at: int | None = None) -> None:
        super().__init__()
        self.vocab, self.wrong_at, self.weight = vocab, wrong_at, nn.Parameter(torch.zeros(1))

    def forward(self, ids: torch.Tensor, **options) -> torch.Tensor:
        nxt = torch.cat([ids[:, 1:], ids[:, :1]], 1)
        if self.wrong_at is not None:
            nxt[:, self.wrong_at] = (nxt[:, self.wrong_at] + 1) % self.vocab
        return nn.functional.one_hot(nxt, self.vocab).float()


def test_the_true_next_tokens_score_and_one_wrong_answer_token_does_not():
    tokenizer = tiny_chat_tokenizer()
    encoder, vocab = ChatEncoder(tokenizer, TEMPLATES["vlmkit"], tokenizer.eos_id), tokenizer.vocab_size
    chats = [question_messages("A 4 B 7", [("B", "7")]), question_messages("A 4 B 7", [("A", "4"), ("B", "7")])]
    assert exact_answers(Oracle(vocab), encoder, chats) == [True, True]
    encoded = encoder.encode(chats[0])
    answer_position = next(i for i, label in enumerate(encoded.labels) if label != -100) - 1
    assert exact_answers(Oracle(vocab, wrong_at=answer_position), encoder, chats[:1]) == [False]
    assert exact_answers(Oracle(vocab, wrong_at=0), encoder, chats[:1]) == [True]  # a prompt token: not scored
