"""The caption-word loss: SuperClass targets by hand, and a head that can fit them."""

from __future__ import annotations

import math

import torch

from vlmkit.processing.text import train_bpe_tokenizer
from vlmkit.training.caption_words import CaptionWordHead, CaptionWordTargets, caption_word_loss

CAPTIONS = [["a red star", "the red star"], ["a blue circle"], ["a red circle and a blue star"]]


def _tokenizer():
    return train_bpe_tokenizer([c for texts in CAPTIONS for c in texts], 300, max_length=16)


def test_targets_are_idf_weighted_word_sets_without_special_tokens():
    tokenizer = _tokenizer()
    targets = CaptionWordTargets(CAPTIONS, tokenizer).rows(range(3))
    sets = [{i for text in texts for i in tokenizer.tokenizer.encode(text).ids} for texts in CAPTIONS]
    idf = {i: math.log(4 / (1 + sum(i in s for s in sets))) for s in sets for i in s}
    for row, ids in enumerate(sets):
        total = sum(idf[i] for i in ids)
        expected = torch.zeros(targets.shape[1])
        for i in ids:
            expected[i] = idf[i] / total
        torch.testing.assert_close(targets[row], expected)
    words = {tokenizer.decode([i]).strip(): i for i in range(targets.shape[1])}
    assert targets[1, words["red"]] == 0 and targets[1, words["blue"]] == targets[1, words["circle"]] == 0.5
    assert float(targets[:, tokenizer.pad_id].sum() + targets[:, tokenizer.eos_id].sum()) == 0.0


def test_the_head_fits_its_targets():
    torch.manual_seed(0)
    targets = CaptionWordTargets(CAPTIONS, _tokenizer()).rows(range(3))
    embeds = torch.nn.functional.normalize(torch.randn(3, 16), dim=-1)
    head = CaptionWordHead(16, targets.shape[1])
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = caption_word_loss(head(embeds), targets).item()
    for _ in range(200):
        loss = caption_word_loss(head(embeds), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    entropy = -(targets * targets.clamp_min(1e-12).log()).sum(1).mean().item()
    assert loss.item() < entropy + 0.05 < first  # cross-entropy falls to the targets' own entropy
