"""CLIPScore against a hand computation on a tiny CLIP: ``100 * max(cos, 0)`` of each image with its prompt."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from testkit import perturb, tiny_model
from vlmkit.errors import InputError
from vlmkit.evaluation.clip_score import clip_score, clip_scores

PROMPTS = ["a red circle", "a blue square", "a green triangle", "two yellow stars", "the cat", "a dog"]


@pytest.fixture(scope="module")
def clip():
    torch.manual_seed(0)
    return perturb(tiny_model(), 0.2)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)) for _ in PROMPTS]


def _cosines(model, images, prompts) -> torch.Tensor:
    """By hand: the model's raw embeddings, normalised here, dotted pair by pair."""
    with torch.no_grad():
        image = model.image_projection(model.vision(model.image_processor(images)))
        tokens = model.tokenizer(prompts)
        text = model.text_projection(model.text(tokens.input_ids, tokens.attention_mask))
    return (F.normalize(image, dim=-1) * F.normalize(text, dim=-1)).sum(-1)


def test_scores_are_100_times_the_clipped_cosine(clip, images):
    cosine = _cosines(clip, images, PROMPTS)
    expected = 100 * cosine.clamp(min=0)
    got = clip_scores(clip, images, PROMPTS)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    assert clip_score(clip, images, PROMPTS) == pytest.approx(float(expected.mean()), abs=1e-4)


def test_negative_cosines_score_zero(clip, images):
    """With the text projection negated every cosine flips sign: each pair scores in exactly one of the two."""
    flipped = perturb(tiny_model(), 0.0)
    flipped.load_state_dict(clip.state_dict())
    with torch.no_grad():
        flipped.text_projection.weight.neg_()
    first, second = clip_scores(clip, images, PROMPTS), clip_scores(flipped, images, PROMPTS)
    assert torch.all(torch.minimum(first, second) == 0)
    torch.testing.assert_close(first + second, 100 * _cosines(clip, images, PROMPTS).abs(), atol=1e-4, rtol=0)
    assert torch.all(first + second > 0)  # no cosine is exactly 0, so the clipping was exercised


def test_one_prompt_per_image(clip, images):
    with pytest.raises(InputError, match="one prompt each"):
        clip_scores(clip, images, PROMPTS[:2])
    with pytest.raises(InputError, match="at least one image"):
        clip_scores(clip, [], [])
