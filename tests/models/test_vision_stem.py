"""The optional convolutional stem of the ViT: shapes, round trip, and a clear config error."""

from __future__ import annotations

import pytest
import torch

from testkit import tiny_clip_config
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.config import DualEncoderConfig
from vlmkit.errors import ConfigError
from vlmkit.models import DualEncoder


def test_conv_stem_keeps_the_token_grid_and_round_trips(tmp_path):
    config = tiny_clip_config()
    config.vision.conv_stem = 2
    model = DualEncoder(config).eval()
    pixels = torch.randn(2, 3, 32, 32)
    assert model.vision.embed(pixels).shape == (2, config.vision.num_tokens, config.vision.width)
    save_pretrained(model, tmp_path)
    torch.testing.assert_close(from_pretrained(tmp_path).encode_image(pixels), model.encode_image(pixels))


def test_batch_norm_stem_saves_its_running_statistics(tmp_path):
    config = tiny_clip_config()
    config.vision.conv_stem, config.vision.conv_stem_norm = 2, "batch"
    model = DualEncoder(config)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.vision.stem)
    model.train()
    model.encode_image(torch.randn(8, 3, 32, 32) * 3 + 1)  # moves the running mean and variance
    model.eval()
    save_pretrained(model, tmp_path)
    pixels = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(from_pretrained(tmp_path).encode_image(pixels), model.encode_image(pixels))


def test_conv_stem_must_divide_the_patch():
    data = tiny_clip_config().to_dict()
    data["vision"]["conv_stem"] = 4  # 8 px patches cannot take 4 halvings
    with pytest.raises(ConfigError, match="conv_stem"):
        DualEncoderConfig.from_dict(data)
