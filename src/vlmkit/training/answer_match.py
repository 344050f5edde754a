"""Teacher-forced exact match of answers: the cheap accuracy for learning curves of lookup tasks.

An answer counts when the model's argmax predicts every one of its labelled tokens given the true prefix. It
needs one forward pass per batch where generation needs one per token, so a curve can be scored every few
dozen steps on 2 cores; on one-word answers (a colour, a value) it equals greedy decoding's exact match.
"""

from __future__ import annotations

import torch
from torch import nn

from vlmkit.data.recall import Messages
from vlmkit.models import VisionLanguageModel
from vlmkit.models.decoder import answer_blocks
from vlmkit.processing.chat import ChatEncoder, pad_right


def exact_answers(
    model: nn.Module,
    encoder: ChatEncoder,
    chats: list[Messages],
    vision_tokens: torch.Tensor | None = None,
    batch_size: int = 128,
) -> list[bool]:
    """Per chat, whether every answer token is predicted; ``vision_tokens`` (one row per chat) for a VLM
    that reads a frozen tower's tokens, None for text alone."""
    rows = [(encoded.input_ids, encoded.labels) for encoded in map(encoder.encode, chats)]
    hits: list[bool] = []
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            ids, labels = (t.to(device) for t in pad_right(rows[start : start + batch_size], encoder.tokenizer.pad_id))
            if isinstance(model, VisionLanguageModel):
                tokens = None if vision_tokens is None else vision_tokens[start : start + batch_size].to(device)
                logits = model(ids, vision_tokens=tokens, labels=labels).logits  # labels: a prefix-LM's blocks
            else:
                logits = model(ids, segments=answer_blocks(labels))
            targets = labels[:, 1:]
            hits += ((logits[:, :-1].argmax(-1) == targets) | (targets == -100)).all(1).tolist()
    model.train(was_training)
    return hits
