"""Frame-difference tokens (models.frame_delta): a sequence's first image as it is, later ones as changes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.checkpoints.export import export_hf
from vlmkit.config import VlmConfig
from vlmkit.errors import ConfigError, InputError
from vlmkit.models.frame_delta import frame_deltas


def test_later_images_become_differences_within_each_sequence():
    features = torch.randn(5, 4, 3)  # a sequence of 3 images, then one of 2
    counts = torch.tensor([3, 2])
    previous = frame_deltas(features, counts, "previous")
    first = frame_deltas(features, counts, "first")
    for out in (previous, first):
        torch.testing.assert_close(out[[0, 3]], features[[0, 3]])  # each sequence's first image is kept
    torch.testing.assert_close(previous[1], features[1] - features[0])
    torch.testing.assert_close(previous[2], features[2] - features[1])
    torch.testing.assert_close(previous[4], features[4] - features[3])
    torch.testing.assert_close(first[2], features[2] - features[0])
    static = features[:1].expand(3, -1, -1)
    assert not frame_deltas(static, torch.tensor([3]), "previous")[1:].any()  # what does not change cancels


def test_wrong_counts_or_mode_are_one_line():
    with pytest.raises(InputError, match="hold 4 images but 5"):
        frame_deltas(torch.zeros(5, 2, 3), torch.tensor([2, 2]), "previous")
    with pytest.raises(InputError, match="frame_delta: expected one of"):
        frame_deltas(torch.zeros(2, 2, 3), torch.tensor([2]), "last")


def _prompts(model, counts):
    """One prompt per count, holding that many images' tokens between two text tokens."""
    image = model.config.image_token_id
    return [[5, *[image] * (n * model.tokens_per_image), 6] for n in counts]


def test_the_model_splices_differences_whatever_form_the_features_come_in():
    torch.manual_seed(0)
    plain = tiny_vlm()
    delta = tiny_vlm()
    delta.load_state_dict(plain.state_dict())
    delta.config = dataclasses.replace(plain.config, frame_delta="previous")
    pixels = torch.randn(4, 3, 32, 32)
    prompts = _prompts(plain, [3, 1])
    _, _, before = plain.prepare(prompts, pixels)
    ids, _, after = delta.prepare(prompts, pixels)
    slots = ids == plain.config.image_token_id
    tokens = plain.tokens_per_image
    seen, changed = before[slots].view(4, tokens, -1), after[slots].view(4, tokens, -1)
    torch.testing.assert_close(changed[[0, 3]], seen[[0, 3]])
    torch.testing.assert_close(changed[1], seen[1] - seen[0])
    torch.testing.assert_close(changed[2], seen[2] - seen[1])
    torch.testing.assert_close(after[~slots], before[~slots])  # text rows untouched
    features = delta.encode_images(pixels)
    flat = delta.embed(ids, features.reshape(-1, features.shape[-1]))  # a chat's pictures come as (N * T, D)
    torch.testing.assert_close(flat, after)


def test_the_setting_survives_save_and_load(tmp_path):
    torch.manual_seed(0)
    model = tiny_vlm()
    model.config = dataclasses.replace(model.config, frame_delta="first")
    save_pretrained(model, tmp_path / "m")
    loaded = from_pretrained(tmp_path / "m")
    assert loaded.config.frame_delta == "first"
    assert VlmConfig.from_dict(model.config.to_dict()) == model.config
    ids = torch.tensor(_prompts(model, [2]))
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, pixels).logits, model(ids, pixels).logits)
    with pytest.raises(ConfigError, match="frame_delta"):
        export_hf(model, tmp_path / "hf")  # transformers' LLaVA has no such step: refused, not silently dropped


def test_a_bad_setting_is_refused_in_one_line():
    config = tiny_vlm().config.to_dict()
    with pytest.raises(ConfigError, match=r"frame_delta: expected one of") as error:
        VlmConfig.from_dict({**config, "frame_delta": "sideways"})
    assert "\n" not in str(error.value)
    built = VlmConfig.from_dict(config)
    with pytest.raises(ConfigError, match=r"vlm\.frame_delta: expected none, previous or first"):
        dataclasses.replace(built, frame_delta="sideways").validate("vlm")  # a config built in code
    with pytest.raises(ConfigError, match="frame_delta: needs a fixed token count"):
        dataclasses.replace(built, frame_delta="previous", image_splitting=True).validate("vlm")
