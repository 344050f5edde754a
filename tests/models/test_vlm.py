"""VisionLanguageModel: save/load, from_parts, pixel shuffle, loss masking, and freezing parts."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.config import ProjectorConfig, VlmConfig, config_from_json, tiny_decoder_config, tiny_vlm_config
from vlmkit.models import Decoder, VisionLanguageModel
from vlmkit.models.projector import pixel_shuffle


def test_pixel_shuffle_merges_neighbouring_patches():
    grid = torch.arange(16.0).reshape(1, 16, 1)  # a 4x4 grid, token value = its index
    merged = pixel_shuffle(grid, 2)
    assert merged.shape == (1, 4, 4)
    assert merged[0, 0].tolist() == [0, 1, 4, 5] and merged[0, 3].tolist() == [10, 11, 14, 15]


def test_save_and_load_round_trip(tmp_path):
    model = tiny_vlm()
    save_pretrained(model, tmp_path)
    loaded = from_pretrained(tmp_path)
    assert isinstance(loaded, VisionLanguageModel) and isinstance(config_from_json(tmp_path / "config.json"), VlmConfig)
    assert loaded.tokenizer is not None and loaded.image_processor is not None
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    ids = torch.tensor([[1, *[model.config.image_token_id] * model.tokens_per_image, 40, 41]])
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, pixels).logits, model(ids, pixels).logits, atol=0, rtol=0)


def test_loss_is_cross_entropy_on_labelled_positions():
    model = tiny_vlm()
    image = model.config.image_token_id
    ids = torch.tensor([[1, *[image] * model.tokens_per_image, 40, 41, 42, 2]])
    labels = torch.full_like(ids, -100)
    labels[0, -3:] = ids[0, -3:]
    out = model(ids, torch.randn(1, 3, 32, 32), labels=labels)
    expected = F.cross_entropy(out.logits[0, -4:-1], ids[0, -3:])
    torch.testing.assert_close(out.loss, expected)


def test_from_parts_reuses_the_towers_and_trains_only_the_projector():
    donor = tiny_vlm()
    vision, decoder = donor.vision, donor.decoder
    model = VisionLanguageModel.from_parts(vision, decoder, ProjectorConfig(kind="linear"), tokenizer=donor.tokenizer)
    assert model.vision is vision and model.decoder is decoder and model.projector.fc2 is None
    assert model.config.image_token_id == donor.tokenizer.tokenizer.token_to_id("<image>")
    model.train()
    model.vision.requires_grad_(False)
    model.decoder.requires_grad_(False)
    ids = torch.tensor([[1, *[model.config.image_token_id] * model.tokens_per_image, 40, 41]])
    model(ids, torch.randn(1, 3, 32, 32), labels=ids).loss.backward()
    assert model.projector.fc1.weight.grad is not None
    assert all(p.grad is None for p in [*model.vision.parameters(), *model.decoder.parameters()])


def test_presets_build_small_models():
    decoder = Decoder(tiny_decoder_config())
    assert 1e6 < sum(p.numel() for p in decoder.parameters()) < 5e6
    vlm = VisionLanguageModel(tiny_vlm_config())
    assert vlm.tokens_per_image == 16 and sum(p.numel() for p in vlm.parameters()) < 6e6
