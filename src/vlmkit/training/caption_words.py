"""Caption-word classification, SuperClass-style (Huang et al., 2024): an auxiliary loss for the image tower.

A contrastive loss only rewards image features that tell a batch's captions apart. On ShapesWorld the
colours already do that for almost every pair, so shape gets next to no gradient, and both towers settle
on embeddings that ignore it (README, "Results"). Predicting the caption's words from the image gives every
word, shape words included, a direct per-image signal, for the cost of one linear layer.

Targets follow SuperClass: the set of subword ids in the image's captions, weighted by inverse document
frequency and normalised to sum to 1, scored with softmax cross-entropy. The head reads the image
embedding that the contrastive loss uses, so what it teaches lands where zero-shot and retrieval look.
"""

from __future__ import annotations

import torch
from torch import nn

from vlmkit.processing.text import TextTokenizer


def caption_word_targets(captions: list[list[str]], tokenizer: TextTokenizer) -> torch.Tensor:
    """(images, vocab) target distributions: IDF-weighted sets of each image's caption token ids."""
    texts = [text for texts in captions for text in texts]
    owners = torch.tensor([i for i, texts in enumerate(captions) for _ in texts], dtype=torch.long)
    present = torch.zeros(len(captions), tokenizer.vocab_size)
    if texts:
        ids = tokenizer(texts).input_ids
        present[owners.unsqueeze(1).expand_as(ids), ids] = 1.0
    specials = [i for i in (tokenizer.pad_id, tokenizer.eos_id, tokenizer.bos_id) if i is not None]
    present[:, specials] = 0.0
    idf = torch.log((1 + len(captions)) / (1 + present.sum(0)))
    weighted = present * idf
    return weighted / weighted.sum(1, keepdim=True).clamp_min(1e-12)


class CaptionWordHead(nn.Module):
    """A linear classifier over the vocabulary on the (L2-normalised) image embedding.

    The input is rescaled to unit variance per dimension; at norm 1 the logits would start near zero and
    take thousands of steps to reach the range a peaked target needs.
    """

    def __init__(self, embed_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.scale = embed_dim**0.5
        self.classifier = nn.Linear(embed_dim, vocab_size)

    def forward(self, image_embeds: torch.Tensor) -> torch.Tensor:
        return self.classifier(image_embeds * self.scale)


def caption_word_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Soft-target cross-entropy, averaged over images."""
    return -(targets * logits.float().log_softmax(-1)).sum(-1).mean()
