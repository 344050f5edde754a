"""grow_vocabulary: rows for added tokens, old logits unchanged, saved and reloaded with the new size."""

from __future__ import annotations

import pytest
import torch

from grounding_kit import grounding_vlm
from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.errors import ConfigError
from vlmkit.processing.locations import add_location_tokens
from vlmkit.training.vocabulary import grow_vocabulary, order_rows


def test_growth_keeps_old_rows_and_round_trips(tmp_path):
    model = tiny_vlm()
    ids = torch.tensor([[1, 5, 9, 40]])
    before = model.decoder(ids)
    old = model.decoder.config.vocab_size
    add_location_tokens(model.tokenizer)
    assert grow_vocabulary(model.decoder, model.tokenizer.vocab_size) == 1152
    assert model.config.decoder.vocab_size == old + 1152  # the VLM's config is the decoder's
    after = model.decoder(ids)
    assert after.shape[-1] == old + 1152
    torch.testing.assert_close(after[..., :old], before)
    new_rows = model.decoder.embed.weight[old:]
    assert new_rows.std(0).max() < model.decoder.embed.weight[:old].std(0).min()  # near the mean, told apart
    assert len(torch.unique(new_rows, dim=0)) == 1152
    assert grow_vocabulary(model.decoder, model.tokenizer.vocab_size) == 0
    save_pretrained(model, tmp_path / "m")
    loaded = from_pretrained(tmp_path / "m")
    assert loaded.tokenizer.vocab_size == old + 1152
    torch.testing.assert_close(loaded.decoder(ids), after)


def test_shrinking_is_refused():
    model = grounding_vlm()
    with pytest.raises(ConfigError, match="already has"):
        grow_vocabulary(model.decoder, 10)


def _centred_cosines(weight: torch.Tensor, ids: torch.Tensor, old: int) -> torch.Tensor:
    rows = torch.nn.functional.normalize(weight[ids] - weight[:old].mean(0), dim=1)
    return rows @ rows.T


@pytest.mark.parametrize("tie", [True, False])
def test_ordered_rows_are_smooth_in_the_value_and_sized_like_the_vocabulary(tie):
    model = tiny_vlm(tie_embeddings=tie)
    old = model.decoder.config.vocab_size
    add_location_tokens(model.tokenizer)
    grow_vocabulary(model.decoder, model.tokenizer.vocab_size)
    weights = [model.decoder.embed.weight] + ([] if tie else [model.decoder.lm_head.weight])
    before = [w.detach().clone() for w in weights]
    bins = torch.arange(old, old + 1024)
    order_rows(model.decoder, bins, old, seed=3)
    for weight, earlier in zip(weights, before, strict=True):
        assert torch.equal(weight[:old], earlier[:old])  # the vocabulary's own rows are untouched
        assert torch.equal(weight[old + 1024 :], earlier[old + 1024 :])  # so are the mask tokens'
        cosines = _centred_cosines(weight.detach(), bins, old)
        assert torch.diagonal(cosines, 1).mean() > 0.99  # neighbouring bins start nearly together
        assert torch.diagonal(cosines, 16).mean() > torch.diagonal(cosines, 512).mean() + 0.3  # far ones apart
        assert abs(torch.diagonal(cosines, 512).mean()) < 0.2
        assert len(torch.unique(weight[bins], dim=0)) == 1024
        centred = (weight[:old] - weight[:old].mean(0)).norm(dim=1).mean()
        new = (weight[bins] - weight[:old].mean(0)).norm(dim=1)
        torch.testing.assert_close(new, centred.expand(1024), rtol=1e-4, atol=1e-5)


def test_mean_rows_are_not_ordered():
    """The check above can fail: rows grown at the mean (plus noise) have no order."""
    model = grounding_vlm()
    old = model.decoder.config.vocab_size - 1152
    cosines = _centred_cosines(model.decoder.embed.weight.detach(), torch.arange(old, old + 1024), old)
    assert torch.diagonal(cosines, 1).mean() < 0.5


def test_order_rows_refuses_ids_outside_the_vocabulary():
    model = grounding_vlm()
    size = model.decoder.config.vocab_size
    with pytest.raises(ConfigError, match="needs at least 2 ids"):
        order_rows(model.decoder, torch.tensor([size - 2, size]), size - 1152)
    with pytest.raises(ConfigError, match="needs at least 2 ids"):
        order_rows(model.decoder, torch.tensor([5, size - 1]), size - 1152)  # would overwrite a reference row
