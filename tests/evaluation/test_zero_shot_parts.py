"""Zero-shot accuracy split by the words of a class name (colour and shape scored on their own)."""

from __future__ import annotations

import pytest
import torch

from vlmkit.errors import InputError
from vlmkit.evaluation import zero_shot

CLASSES = ["blue circle", "blue star", "red circle", "red star"]


@pytest.fixture
def one_hot_labels(monkeypatch):
    """Each class embeds as its own axis, so an image embedding one-hot on class j predicts j."""
    monkeypatch.setattr(zero_shot, "label_embeddings", lambda model, names, templates: torch.eye(len(names)))


def test_parts_score_each_word_of_the_predicted_class(one_hot_labels) -> None:
    # predictions: red star (right), red circle (colour right), blue star (shape right), blue circle (both wrong)
    images = torch.eye(4)[[3, 2, 1, 0]]
    targets = ["red star", "red star", "red star", "red star"]
    result = zero_shot.zero_shot_accuracy(None, images, targets, CLASSES, ["{}"], ("color", "shape"))
    assert result["zero_shot_top1"] == 0.25
    assert result["zero_shot_color"] == 0.5 and result["zero_shot_shape"] == 0.5


def test_parts_need_the_same_word_count(one_hot_labels) -> None:
    with pytest.raises(InputError, match="2 words"):
        zero_shot.zero_shot_accuracy(None, torch.eye(1), ["star"], ["star"], ["{}"], ("color", "shape"))


def test_text_similarity_compares_classes_that_differ_in_one_word(monkeypatch) -> None:
    # A text tower blind to shape: "blue circle" and "blue star" embed alike, colours are orthogonal.
    blue, red = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    embeds = torch.stack([blue, blue, red, red])
    monkeypatch.setattr(zero_shot, "label_embeddings", lambda model, names, templates: embeds)
    result = zero_shot.zero_shot_accuracy(None, embeds[:1], ["red star"], CLASSES, ["{}"], ("color", "shape"))
    assert result["text_similarity_shape"] == pytest.approx(1.0)
    assert result["text_similarity_color"] == pytest.approx(0.0)
