"""grow_vocabulary: rows for added tokens, old logits unchanged, saved and reloaded with the new size."""

from __future__ import annotations

import pytest
import torch

from grounding_kit import grounding_vlm
from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.errors import ConfigError
from vlmkit.processing.locations import add_location_tokens
from vlmkit.training.vocabulary import grow_vocabulary


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
