"""The CNN image tower of a dual encoder: its cached-token path equals its pixel path, it saves and loads, and
configs that cannot work are named."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from testkit import TINY_EFFNET
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.config import DualEncoderConfig, ImagePoolConfig, TextConfig
from vlmkit.errors import ConfigError
from vlmkit.models import DualEncoder
from vlmkit.models.cnn_tower import CnnTower

BACKBONE = dataclasses.replace(TINY_EFFNET, num_classes=0)
TEXT = TextConfig(vocab_size=50, context_length=12, width=32, layers=1, heads=4, mlp_dim=64)


def _model() -> DualEncoder:
    config = DualEncoderConfig(vision=BACKBONE, text=TEXT, embed_dim=24, image_pool=ImagePoolConfig(width=32, heads=4))
    return DualEncoder(config.checked()).eval()


def test_cached_tokens_give_the_embedding_the_pixels_give() -> None:
    model, pixels = _model(), torch.randn(3, 3, 32, 32)
    assert isinstance(model.vision, CnnTower)
    tokens = model.vision.tokens(pixels)
    channels, side = BACKBONE.feature_shape(-1)
    assert tokens.shape == (3, side * side, channels)
    torch.testing.assert_close(tokens, model.vision.backbone.feature_map(pixels).flatten(2).transpose(1, 2))
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(None, vision_tokens=tokens), model.encode_image(pixels))


def test_the_pool_reads_where_things_are() -> None:
    """Attention pooling with positions, not a mean: the same cells in another order embed differently."""
    model = _model()
    channels, side = BACKBONE.feature_shape(-1)
    tokens = torch.randn(1, side * side, channels)
    with torch.no_grad():
        straight = model.encode_image(None, vision_tokens=tokens)
        swapped = model.encode_image(None, vision_tokens=tokens.flip(1))
    assert not torch.allclose(straight, swapped, atol=1e-4)


def test_a_cnn_dual_encoder_saves_and_loads(tmp_path) -> None:
    model, pixels = _model(), torch.randn(2, 3, 32, 32)
    save_pretrained(model, tmp_path / "clip")
    loaded = from_pretrained(tmp_path / "clip").eval()
    assert loaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_image(pixels), model.encode_image(pixels), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(image_pool=None), "image_pool: a CNN image tower needs one"),
        (dict(vision=dataclasses.replace(BACKBONE, num_classes=7)), "vision.num_classes: a dual encoder's CNN"),
        (dict(image_pool=ImagePoolConfig(width=30, heads=4)), "width: 30 is not divisible by heads"),
    ],
)
def test_configs_that_cannot_work_are_named(change, message) -> None:
    config = DualEncoderConfig(vision=BACKBONE, text=TEXT, embed_dim=24, image_pool=ImagePoolConfig(width=32, heads=4))
    with pytest.raises(ConfigError, match=message):
        DualEncoderConfig.from_dict({**config.to_dict(), **{k: _plain(v) for k, v in change.items()}})


def test_a_vit_takes_no_pool() -> None:
    with pytest.raises(ConfigError, match="a ViT pools itself"):
        DualEncoderConfig.from_dict({**DualEncoderConfig().to_dict(), "image_pool": ImagePoolConfig().to_dict()})


def _plain(value):
    return value.to_dict() if hasattr(value, "to_dict") else value


def test_cell_colours_reach_the_embedding_through_the_pixels() -> None:
    """With ``cell_colours`` the head reads each cell's mean colour: the same backbone tokens with the image's
    colours changed embed differently, and tokens without their pixels are refused."""
    config = DualEncoderConfig(
        vision=BACKBONE, text=TEXT, embed_dim=24, image_pool=ImagePoolConfig(width=32, heads=4, cell_colours=True)
    )
    model, pixels = DualEncoder(config.checked()).eval(), torch.randn(2, 3, 32, 32)
    tokens = model.vision.tokens(pixels)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(pixels, vision_tokens=tokens), model.encode_image(pixels))
        recoloured = model.encode_image(pixels.flip(1), vision_tokens=tokens)  # RGB -> BGR, same tokens
    assert not torch.allclose(recoloured, model.encode_image(pixels, vision_tokens=tokens), atol=1e-4)
    with pytest.raises(ValueError, match="reads each cell's colour"):
        model.encode_image(None, vision_tokens=tokens)
