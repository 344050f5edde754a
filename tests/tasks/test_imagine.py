"""generate_images: seeded, batch-size independent, guided, and strict about what it is asked."""

from __future__ import annotations

import math

import pytest
import torch

from t2i_kit import tiny_dit
from vlmkit.errors import InputError
from vlmkit.tasks.imagine import MAX_IMAGES, ImagineSettings, generate_images


@pytest.fixture(scope="module")
def model():
    return tiny_dit()


def test_the_same_seed_gives_the_same_pixels_whatever_the_batching(model):
    settings = ImagineSettings(steps=3, seed=5)
    images = generate_images(model, ["a red circle", "a blue square"], 2, settings)
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.uint8
    assert torch.equal(images, generate_images(model, ["a red circle", "a blue square"], 2, settings, batch_size=1))
    assert torch.equal(images[:1], generate_images(model, ["a red circle"], 1, settings))  # image k: seed + k
    other = generate_images(model, ["a red circle"], 1, ImagineSettings(steps=3, seed=6))
    assert not torch.equal(images[:1], other)


def test_guidance_and_sampler_change_the_result(model):
    base = generate_images(model, ["a green triangle"], 1, ImagineSettings(steps=3, guidance=1.0))
    assert not torch.equal(
        base, generate_images(model, ["a green triangle"], 1, ImagineSettings(steps=3, guidance=4.0))
    )
    heun = generate_images(model, ["a green triangle"], 1, ImagineSettings(steps=3, guidance=1.0, sampler="heun"))
    assert not torch.equal(base, heun)


def test_guidance_one_is_the_conditional_model_alone(model):
    """With guidance 1 the unconditional half would cancel exactly; it is skipped, not computed."""
    calls = []
    original = model.velocity

    def counting(x, t, text):
        calls.append(x.shape[0])
        return original(x, t, text)

    model.velocity = counting
    try:
        generate_images(model, ["a dog"], 1, ImagineSettings(steps=2, guidance=1.0))
        generate_images(model, ["a dog"], 1, ImagineSettings(steps=2, guidance=2.0))
    finally:
        del model.velocity
    assert calls == [1, 1, 2, 2]


@pytest.mark.parametrize(
    ("prompts", "count", "settings", "field"),
    [
        ([""], 1, ImagineSettings(), "prompts\\[0\\]"),
        (["  "], 1, ImagineSettings(), "prompts\\[0\\]"),
        ("a dog", 1, ImagineSettings(), "prompts"),
        ([], 1, ImagineSettings(), "prompts"),
        (["a dog"], 1, ImagineSettings(steps=-1), "steps"),
        (["a dog"], 1, ImagineSettings(steps=0), "steps"),
        (["a dog"], 1, ImagineSettings(guidance=math.nan), "guidance"),
        (["a dog"], 1, ImagineSettings(guidance=math.inf), "guidance"),
        (["a dog"], 1, ImagineSettings(sampler="ddim"), "sampler"),  # type: ignore[arg-type]
        (["a dog"], MAX_IMAGES + 1, ImagineSettings(), "at most"),
        (["a dog"], 0, ImagineSettings(), "images per prompt"),
    ],
)
def test_bad_requests_are_one_line(model, prompts, count, settings, field):
    with pytest.raises(InputError, match=field) as error:
        generate_images(model, prompts, count, settings)
    assert "\n" not in str(error.value)
