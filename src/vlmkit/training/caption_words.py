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

from collections.abc import Sequence

import torch
from torch import nn

from vlmkit.processing.text import TextTokenizer


class CaptionWordTargets:
    """Each image's caption token ids with their IDF weights, kept sparse.

    A dense (images, vocab) matrix would take about 23 GB for COCO with CLIP's 49k-token vocabulary, so
    only the id sets are stored and a batch's target rows are built when it is drawn.
    """

    def __init__(self, captions: list[list[str]], tokenizer: TextTokenizer) -> None:
        self.vocab = tokenizer.vocab_size
        texts = [text for texts in captions for text in texts]
        ids = tokenizer(texts).input_ids if texts else torch.zeros(0, 1, dtype=torch.long)
        owners = torch.tensor([i for i, texts in enumerate(captions) for _ in texts], dtype=torch.long)
        keys = torch.unique(owners.unsqueeze(1).expand_as(ids) * self.vocab + ids)  # one per (image, token)
        owner, token = keys // self.vocab, keys % self.vocab
        specials = [i for i in (tokenizer.pad_id, tokenizer.eos_id, tokenizer.bos_id) if i is not None]
        keep = ~torch.isin(token, torch.tensor(specials, dtype=torch.long))
        owner, token = owner[keep], token[keep]
        self.ids = list(token.split(torch.bincount(owner, minlength=len(captions)).tolist()))
        document_frequency = torch.bincount(token, minlength=self.vocab).float()
        self.idf = torch.log((1 + len(captions)) / (1 + document_frequency))

    def rows(self, items: Sequence[int]) -> torch.Tensor:
        """(len(items), vocab) target distributions: each image's IDF-weighted token set, summing to 1."""
        chosen = [self.ids[i] for i in items]
        rows = torch.arange(len(chosen)).repeat_interleave(torch.tensor([len(c) for c in chosen], dtype=torch.long))
        columns = torch.cat(chosen) if chosen else torch.zeros(0, dtype=torch.long)
        weighted = torch.zeros(len(chosen), self.vocab)
        weighted[rows, columns] = self.idf[columns]
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
