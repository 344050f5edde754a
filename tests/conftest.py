"""Shared fixtures: tiny models that build in milliseconds, so every test can make its own."""

from __future__ import annotations

import pytest
import torch

from vlmkit.config import DualEncoderConfig, clip_config, siglip_config


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


def tiny_clip_config(**overrides) -> DualEncoderConfig:
    settings = dict(
        vision_width=32,
        vision_layers=2,
        vision_heads=4,
        patch_size=8,
        image_size=32,
        text_width=32,
        text_layers=2,
        text_heads=4,
        embed_dim=24,
        vocab_size=100,
        context_length=16,
    )
    settings.update(overrides)
    return clip_config(**settings)


def tiny_siglip_config(**overrides) -> DualEncoderConfig:
    settings = dict(width=32, layers=2, heads=4, patch_size=8, image_size=32, vocab_size=100, context_length=16)
    settings.update(overrides)
    return siglip_config(**settings)


WORDS = ["a photo of a red circle", "a blue square", "a green triangle", "two yellow stars", "the cat", "a dog"]


def tiny_tokenizer(max_length: int = 16, pad_to_max_length: bool = False):
    from vlmkit.processing.text import train_bpe_tokenizer

    return train_bpe_tokenizer(WORDS * 4, vocab_size=300, max_length=max_length, pad_to_max_length=pad_to_max_length)


def tiny_model(family: str = "clip"):
    """A random tiny dual encoder with a real tokenizer and image processor attached."""
    from vlmkit.models import DualEncoder
    from vlmkit.processing.images import ImagePreprocessor

    siglip = family == "siglip"
    tokenizer = tiny_tokenizer(pad_to_max_length=siglip)
    config = tiny_siglip_config(vocab_size=320) if siglip else tiny_clip_config(vocab_size=320)
    config.text.eos_token_id = tokenizer.eos_id
    config.text.pad_token_id = tokenizer.pad_id
    model = DualEncoder(config).eval()
    model.tokenizer = tokenizer
    model.image_processor = (ImagePreprocessor.siglip if siglip else ImagePreprocessor.clip)(32)
    return model


@pytest.fixture
def photo_files(tmp_path):
    """A few small real-looking images on disk (scikit-image's sample photos, downscaled)."""
    from PIL import Image
    from skimage import data

    paths = []
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        path = tmp_path / f"{name}.jpg"
        Image.fromarray(getattr(data, name)()).convert("RGB").resize((64, 48)).save(path, quality=90)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory):
    """A small ShapesWorld train/val pair at 32 px, generated once per test session."""
    from vlmkit.data.shapesworld import ShapesWorldConfig, generate_split

    root = tmp_path_factory.mktemp("shapes")
    config = ShapesWorldConfig(image_size=32, max_objects=2)
    generate_split(root / "train", config, "train", 64, seed=0, workers=1, progress=False)
    generate_split(root / "val", config, "val", 16, seed=0, workers=1, progress=False)
    return root
