"""The shuffled-image caption loss: exact per-token averaging, and zero gain for a model blind to its image."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from tiny_vlm import tiny_vlm
from vlmkit.evaluation.generative import caption_loss_with_shuffled_images

CAPTIONS = ["a red circle", "a large blue square and a small green star", "white", "two yellow hearts"]


@pytest.fixture
def images():
    colors = [(255, 0, 0), (0, 0, 255), (255, 255, 255), (255, 255, 0)]
    return [Image.new("RGB", (32, 32), c) for c in colors]


def test_batch_size_does_not_change_the_losses(images):
    torch.manual_seed(0)
    model = tiny_vlm()
    one = caption_loss_with_shuffled_images(model, images, CAPTIONS, batch_size=1)
    all_at_once = caption_loss_with_shuffled_images(model, images, CAPTIONS, batch_size=4)
    assert one == pytest.approx(all_at_once, abs=1e-5)
    assert one["image_gain"] == pytest.approx(one["caption_loss_shuffled_images"] - one["caption_loss"])
    assert one["image_gain"] != pytest.approx(0.0, abs=1e-6)  # a random model still reacts to its pixels


def test_a_model_blind_to_its_image_gains_nothing(images):
    torch.manual_seed(0)
    model = tiny_vlm()
    last_linear = [m for m in model.projector.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last_linear.weight.zero_()  # every image becomes the same tokens: the bias
    result = caption_loss_with_shuffled_images(model, images, CAPTIONS, batch_size=2)
    assert result["image_gain"] == pytest.approx(0.0, abs=1e-6)


def test_one_image_is_refused(images):
    with pytest.raises(ValueError, match="at least two"):
        caption_loss_with_shuffled_images(tiny_vlm(), images[:1], CAPTIONS[:1], batch_size=1)
