"""VisionLanguageModel: save/load, from_parts, pixel shuffle, loss masking, and freezing parts."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from testkit import TINY_EFFNET
from tiny_vlm import tiny_chat_tokenizer, tiny_vlm
from tiny_vlm import tiny_decoder_config as tiny_decoder_config_for
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.config import ProjectorConfig, VlmConfig, config_from_json, tiny_decoder_config, tiny_vlm_config
from vlmkit.errors import ConfigError
from vlmkit.models import Decoder, VisionLanguageModel
from vlmkit.models.efficientnet import EfficientNet
from vlmkit.models.generation import GenerationConfig
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


def cnn_vlm(pixel_shuffle: int = 2, vision_layer: int = -1) -> VisionLanguageModel:
    """A tiny VLM whose vision tower is an EfficientNet without its classifier (an 8x8 head feature map)."""
    return tiny_vlm(pixel_shuffle, vision=dataclasses.replace(TINY_EFFNET, num_classes=0), vision_layer=vision_layer)


@pytest.mark.parametrize("level", [0, 1, 2, 3, -1, -4])
def test_the_cnn_config_predicts_each_feature_maps_shape(level):
    tower = EfficientNet(dataclasses.replace(TINY_EFFNET, num_classes=0)).eval()
    with torch.no_grad():
        features = tower.feature_map(torch.randn(1, 3, 32, 32), level)
    channels, side = TINY_EFFNET.feature_shape(level)
    assert features.shape == (1, channels, side, side)
    assert TINY_EFFNET.feature_levels == 4  # stem, two stages, head
    with pytest.raises(ConfigError, match="feature map 4: the network has 4"):
        tower.feature_map(torch.randn(1, 3, 32, 32), 4)


def test_a_cnn_vlm_can_read_an_earlier_finer_feature_map():
    model = cnn_vlm(pixel_shuffle=2, vision_layer=1)  # the first stage's 16x16 map of 8 channels
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        cells = model.vision.feature_map(pixels, 1)
        tokens = model.vision_tokens(pixels)
        features = model.encode_images(pixels)
    assert tokens.shape == (2, 16 * 16, 8)
    torch.testing.assert_close(tokens[0, 3 * 16 + 5], cells[0, :, 3, 5])
    assert model.tokens_per_image == 64 and features.shape == (2, 64, model.config.decoder.width)
    assert model.projector.config.pixel_shuffle == 2 and model.config.vision_width == 8


def test_a_cnn_vision_layer_outside_the_network_is_refused():
    config = cnn_vlm().config
    with pytest.raises(ConfigError, match=r"projector.vision_layer: 4 is outside the convolutional tower's 4"):
        dataclasses.replace(config, projector=dataclasses.replace(config.projector, vision_layer=4)).validate("vlm")


@pytest.mark.parametrize("size", [32, 37])
def test_a_cnn_tower_gives_one_token_per_feature_map_cell(size):
    config = dataclasses.replace(TINY_EFFNET, image_size=size, num_classes=0)
    tower = EfficientNet(config).eval()
    model = cnn_vlm()
    model.vision = tower
    pixels = torch.randn(2, 3, size, size)
    with torch.no_grad():
        cells = tower.feature_map(pixels)
        tokens = model.vision_tokens(pixels)
    assert cells.shape[-2:] == (config.grid, config.grid)  # the config predicts the map's side
    assert tokens.shape == (2, config.grid**2, config.head_channels)
    row, column = 1, config.grid - 1
    torch.testing.assert_close(tokens[1, row * config.grid + column], cells[1, :, row, column])


def test_a_cnn_vlm_runs_saves_and_loads(tmp_path):
    model = cnn_vlm(pixel_shuffle=2)
    assert model.vision.classifier is None and model.tokens_per_image == 16  # 8x8 cells, shuffled 2x2
    save_pretrained(model, tmp_path)
    loaded = from_pretrained(tmp_path)
    ids = torch.tensor([[1, *[model.config.image_token_id] * model.tokens_per_image, 40, 41]])
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, pixels).logits, model(ids, pixels).logits, atol=0, rtol=0)
        tokens = model.vision_tokens(pixels)
        torch.testing.assert_close(model(ids, vision_tokens=tokens).logits, model(ids, pixels).logits)
    assert len(loaded.generate([ids[0].tolist()], pixels, GenerationConfig(max_new_tokens=3))[0]) <= 3


def test_vlm_config_rejects_a_classifier_and_an_indivisible_shuffle():
    tokenizer = tiny_chat_tokenizer()
    parts = dict(decoder=tiny_decoder_config_for(tokenizer), image_token_id=5)
    with pytest.raises(ConfigError, match="num_classes"):
        VlmConfig.from_dict(VlmConfig(vision=TINY_EFFNET, **parts).to_dict())
    headless = dataclasses.replace(TINY_EFFNET, num_classes=0)
    with pytest.raises(ConfigError, match="does not divide the 8x8 token grid"):
        VlmConfig(vision=headless, projector=ProjectorConfig(pixel_shuffle=3), **parts).validate("vlm")
