"""Typed batches: the trainer moves every tensor field to the device and leaves the rest alone."""

from __future__ import annotations

import torch

from vlmkit.training.batches import ChatBatch, ImageTextBatch


def test_to_moves_tensor_fields_and_keeps_none():
    batch = ChatBatch(torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.long))
    moved = batch.to(torch.device("meta"))
    assert isinstance(moved, ChatBatch) and moved is not batch
    assert moved.input_ids.is_meta and moved.labels.is_meta and moved.input_ids.dtype == torch.long
    assert moved.pixels is None and moved.vision_tokens is None
    assert not batch.input_ids.is_meta  # the original is untouched


def test_image_text_batch_knows_its_hard_negatives():
    plain = ImageTextBatch(torch.zeros(2, 3, 4, 4), torch.zeros(2, 5, dtype=torch.long))
    assert plain.hard_negatives is None
    doubled = ImageTextBatch(torch.zeros(2, 3, 4, 4), torch.arange(20).view(4, 5))
    assert torch.equal(doubled.hard_negatives, torch.arange(10, 20).view(2, 5))
