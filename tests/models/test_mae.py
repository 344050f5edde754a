"""Patch dropping in the ViT (FLIP's and MAE's one gather) and the masked autoencoder built on it."""

from __future__ import annotations

import pytest
import torch

from testkit import tiny_clip_config
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.config.mae import MaeConfig
from vlmkit.errors import ConfigError
from vlmkit.models import DualEncoder, MaskedAutoencoder, VisionTransformer
from vlmkit.models.mae import hidden_mask, patchify, unpatchify
from vlmkit.models.vision import random_patch_keep


def _vision(conv_stem: int = 0):
    config = tiny_clip_config().vision  # 32 px, 8 px patches: a 4x4 grid, class token
    config.conv_stem = conv_stem
    return config


def test_random_patch_keep_shapes_and_determinism_by_seed():
    keep = random_patch_keep(5, 16, 0.75, torch.Generator().manual_seed(3))
    assert keep.shape == (5, 4) and keep.dtype == torch.long
    assert all(row.unique().numel() == 4 and torch.equal(row, row.sort().values) for row in keep)
    assert int(keep.min()) >= 0 and int(keep.max()) < 16
    assert torch.equal(keep, random_patch_keep(5, 16, 0.75, torch.Generator().manual_seed(3)))
    assert not torch.equal(keep, random_patch_keep(5, 16, 0.75, torch.Generator().manual_seed(4)))
    assert len({tuple(row.tolist()) for row in keep}) > 1  # a subset per image, not one for the batch
    assert random_patch_keep(2, 16, 0.99, torch.Generator()).shape == (2, 1)  # never nothing to see
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        random_patch_keep(2, 16, 1.0, torch.Generator())


def test_vit_keeps_the_named_patches_and_all_of_them_without_keep():
    config = _vision()
    tower = VisionTransformer(config).eval()
    pixels = torch.randn(3, 3, 32, 32)
    full = tower.embed(pixels)
    keep = random_patch_keep(3, 16, 0.5, torch.Generator().manual_seed(0))
    kept = tower.embed(pixels, keep)
    assert kept.shape == (3, 1 + 8, config.width)
    torch.testing.assert_close(kept[:, 0], full[:, 0])  # the class token always stays
    for row in range(3):
        torch.testing.assert_close(kept[row, 1:], full[row, 1 + keep[row]])
    everything = torch.arange(16).expand(3, -1)
    torch.testing.assert_close(tower(pixels, everything), tower(pixels), rtol=0, atol=0)
    assert tower(pixels, keep).shape == (3, config.width)


def test_dual_encoder_passes_patch_keep_to_its_tower_only_when_given():
    model = DualEncoder(tiny_clip_config()).eval()
    pixels, ids = torch.randn(2, 3, 32, 32), torch.randint(0, 99, (2, 16))
    keep = random_patch_keep(2, 16, 0.5, torch.Generator().manual_seed(1))
    dropped = model(pixels, ids, patch_keep=keep).image_embeds
    torch.testing.assert_close(dropped, model.encode_image(pixels, patch_keep=keep))
    assert not torch.allclose(dropped, model.encode_image(pixels))


def test_patchify_round_trips_in_raster_order():
    pixels = torch.randn(2, 3, 32, 32)
    patches = patchify(pixels, 8)
    assert patches.shape == (2, 16, 8 * 8 * 3)
    torch.testing.assert_close(patches[:, 1].reshape(2, 8, 8, 3).permute(0, 3, 1, 2), pixels[:, :, :8, 8:16])
    torch.testing.assert_close(unpatchify(patches, 8), pixels, rtol=0, atol=0)


@pytest.mark.parametrize("conv_stem", [0, 2])
def test_mae_predicts_every_patch_and_hidden_pixels_do_not_leak(conv_stem):
    model = MaskedAutoencoder(MaeConfig(vision=_vision(conv_stem), decoder_width=32, decoder_heads=2)).eval()
    pixels = torch.randn(2, 3, 32, 32)
    keep = random_patch_keep(2, 16, 0.75, torch.Generator().manual_seed(0))
    predicted = model(pixels, keep)
    assert predicted.shape == (2, 16, 8 * 8 * 3)
    hidden = hidden_mask(keep, 16)
    assert hidden.sum() == 2 * 12 and not hidden.gather(1, keep).any()
    # Change only hidden patches' pixels: the prediction must not move (with a conv stem too).
    changed = unpatchify(torch.where(hidden.unsqueeze(-1), torch.randn(2, 16, 192), patchify(pixels, 8)), 8)
    torch.testing.assert_close(model(changed, keep), predicted, rtol=0, atol=0)


def test_mae_round_trips_and_its_encoder_is_a_plain_vit(tmp_path):
    model = MaskedAutoencoder(MaeConfig(vision=_vision(), decoder_width=32, decoder_heads=2)).eval()
    save_pretrained(model, tmp_path)
    loaded = from_pretrained(tmp_path)
    assert isinstance(loaded, MaskedAutoencoder) and isinstance(loaded.encoder, VisionTransformer)
    pixels, keep = torch.randn(2, 3, 32, 32), random_patch_keep(2, 16, 0.75, torch.Generator().manual_seed(0))
    torch.testing.assert_close(loaded(pixels, keep), model(pixels, keep), rtol=0, atol=0)


def test_decoder_heads_must_divide_its_width():
    with pytest.raises(ConfigError, match="decoder_width: 30 is not divisible by decoder_heads 4"):
        MaeConfig.from_dict({"vision": _vision().to_dict(), "decoder_width": 30, "decoder_heads": 4})
