"""The DiT: shapes, its zero start, classifier-free dropout, text towers, and the save/load round trip."""

from __future__ import annotations

import pytest
import torch

from t2i_kit import tiny_dit, tiny_dit_config
from testkit import tiny_model
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.config import config_from_json
from vlmkit.config.dit import DiTConfig
from vlmkit.errors import ConfigError
from vlmkit.models.dit import DiT, text_token_states


def _inputs(model: DiT, prompts=("a red circle", "two yellow stars")):
    tokens = model.tokenizer(list(prompts))
    x = torch.randn(len(prompts), 3, 16, 16, generator=torch.Generator().manual_seed(0))
    return x, torch.tensor([0.3, 0.8])[: len(prompts)], tokens.input_ids, tokens.attention_mask


def test_velocity_has_the_image_shape_and_starts_at_zero():
    model = tiny_dit(perturbed=False)
    x, t, ids, mask = _inputs(model)
    out = model(x, t, ids, mask)
    assert out.shape == x.shape
    assert torch.equal(out, torch.zeros_like(out))  # adaLN-Zero: the last layer starts at zero


def test_rows_are_independent_and_the_text_matters():
    model = tiny_dit()
    x, t, ids, mask = _inputs(model)
    both = model(x, t, ids, mask)
    alone = model(x[1:], t[1:], *(v[1:, : int(mask[1].sum())] for v in (ids, mask)))
    torch.testing.assert_close(both[1:], alone, atol=1e-5, rtol=1e-4)  # padding changes nothing
    swapped = model(x, t, ids.flip(0), mask.flip(0))
    assert not torch.allclose(both, swapped, atol=1e-3)


def test_dropped_rows_are_the_null_condition():
    model = tiny_dit()
    x, t, ids, mask = _inputs(model)
    dropped = model(x, t, ids, mask, drop=torch.tensor([True, False]))
    null = model.velocity(x[:1], t[:1], model.null_condition(1))
    torch.testing.assert_close(dropped[:1], null, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(dropped[1:], model(x[1:], t[1:], ids[1:], mask[1:]), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_token_states_come_from_the_towers_own_forward(family):
    encoder = tiny_model(family)
    tokens = encoder.tokenizer(["a blue square", "a dog"])
    states, pooled = text_token_states(encoder.text, tokens.input_ids, tokens.attention_mask)
    assert states.shape[:2] == tokens.input_ids.shape
    torch.testing.assert_close(pooled, encoder.text(tokens.input_ids, tokens.attention_mask))
    assert not encoder.text.final_norm._forward_hooks  # the hook is gone


def test_a_dual_encoders_text_tower_conditions_the_dit():
    encoder = tiny_model("siglip")
    config = tiny_dit_config(1, 0, 0, text=encoder.config.text)
    model = DiT(config).eval()
    model.text.load_state_dict(encoder.text.state_dict())
    model.tokenizer = encoder.tokenizer
    x, t, ids, mask = _inputs(model)
    assert model(x, t, ids, mask).shape == x.shape


def test_save_and_load_are_bit_identical(tmp_path):
    model = tiny_dit()
    save_pretrained(model, tmp_path / "dit")
    loaded = from_pretrained(tmp_path / "dit")
    assert isinstance(loaded, DiT) and loaded.tokenizer is not None
    assert isinstance(config_from_json(tmp_path / "dit" / "config.json"), DiTConfig)
    x, t, ids, mask = _inputs(model)
    assert torch.equal(model(x, t, ids, mask), loaded(x, t, ids, mask))


def _predicting_a_flat_image(colour: tuple[float, float, float]) -> DiT:
    """An x0-predicting DiT whose last layer answers ``colour`` everywhere (zero weights, the bias a patch)."""
    model = tiny_dit(prediction="x0")
    patch = model.config.patch_size**2
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor(colour).repeat(patch))  # (p, p, C) order, channels last
    return model


def test_x0_prediction_gives_the_velocity_to_its_clean_image():
    colour = (0.5, -0.25, 1.0)
    model = _predicting_a_flat_image(colour)
    x, t, ids, mask = _inputs(model)
    x0 = torch.tensor(colour).view(1, 3, 1, 1).expand_as(x)
    torch.testing.assert_close(model(x, t, ids, mask), (x - x0) / t.view(-1, 1, 1, 1))
    near_data = model(x, torch.tensor([0.01, 0.0]), ids, mask)  # t held at 0.05: no blow-up at t = 0
    torch.testing.assert_close(near_data, (x - x0) / 0.05)


def test_sampling_a_perfect_x0_predictor_lands_on_its_image():
    """With the true x0 the velocity is constant along the path, so Euler is exact in any number of steps."""
    from vlmkit.tasks.imagine import ImagineSettings, generate_images

    colour = (0.6, -0.2, 1.0)
    images = generate_images(_predicting_a_flat_image(colour), ["a red circle"], 2, ImagineSettings(steps=4))
    expected = ((torch.tensor(colour) + 1) * 127.5).round().to(torch.uint8).view(1, 3, 1, 1).expand_as(images)
    assert torch.equal(images, expected)


def test_a_velocity_dit_saved_before_the_prediction_field_loads_as_one(tmp_path):
    path = save_pretrained(tiny_dit(), tmp_path / "dit")
    config = (path / "config.json").read_text()
    (path / "config.json").write_text(config.replace('"prediction": "velocity",', ""))
    assert "prediction" not in (path / "config.json").read_text()
    assert from_pretrained(path).config.prediction == "velocity"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(image_size=18), "multiple of patch_size"),
        (dict(width=30, heads=4), "multiple of heads"),
        (dict(layers=0), "layers: must be positive"),
        (dict(prediction="eps"), "prediction: expected one of"),
    ],
)
def test_bad_configs_say_which_field(overrides, message):
    settings = tiny_dit_config(100, 2, 0).to_dict() | overrides
    with pytest.raises(ConfigError, match=message):
        DiTConfig.from_dict(settings)
