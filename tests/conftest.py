"""Shared fixtures: tiny models that build in milliseconds, so every test can make its own."""

from __future__ import annotations

import pytest
import torch

from vlmkit.config import DualEncoderConfig, clip_config, siglip_config


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


def tiny_clip_config(**overrides) -> DualEncoderConfig:
    settings = dict(vision_width=32, vision_layers=2, vision_heads=4, patch_size=8, image_size=32, text_width=32,
                    text_layers=2, text_heads=4, embed_dim=24, vocab_size=100, context_length=16)
    settings.update(overrides)
    return clip_config(**settings)


def tiny_siglip_config(**overrides) -> DualEncoderConfig:
    settings = dict(width=32, layers=2, heads=4, patch_size=8, image_size=32, vocab_size=100, context_length=16)
    settings.update(overrides)
    return siglip_config(**settings)
