"""A random tiny VLM with a real byte-level BPE tokenizer (with <image>) and image processor."""

from __future__ import annotations

from testkit import WORDS
from vlmkit.config import DecoderConfig, ProjectorConfig, VisionConfig, VlmConfig


def tiny_chat_tokenizer():
    from vlmkit.processing.text import train_bpe_tokenizer

    corpus = [*WORDS, "user: assistant: describe the image.", "what colour is it? it is red."] * 4
    return train_bpe_tokenizer(corpus, vocab_size=320, special_tokens=["<image>"], max_length=64)


def tiny_decoder_config(tokenizer, **overrides) -> DecoderConfig:
    settings = dict(
        vocab_size=tokenizer.vocab_size,
        width=32,
        layers=2,
        heads=4,
        kv_heads=2,
        mlp_dim=64,
        max_positions=128,
        bos_token_id=tokenizer.bos_id,
        eos_token_ids=(tokenizer.eos_id,),
        pad_token_id=tokenizer.pad_id,
    )
    settings.update(overrides)
    return DecoderConfig(**settings)


def tiny_vlm(pixel_shuffle: int = 2, vision=None, vision_layer: int = -1, **decoder):
    """A tiny ViT VLM at 32 px, or one around ``vision`` (e.g. a headless EfficientNet config); ``decoder``
    overrides the decoder's settings (``max_positions=512`` for prompts of many frames)."""
    from vlmkit.models import VisionLanguageModel
    from vlmkit.processing.images import ImagePreprocessor

    tokenizer = tiny_chat_tokenizer()
    config = VlmConfig(
        vision=vision or VisionConfig(image_size=32, patch_size=8, width=32, layers=2, heads=4, mlp_dim=64, act="gelu"),
        projector=ProjectorConfig(pixel_shuffle=pixel_shuffle, vision_layer=vision_layer),
        decoder=tiny_decoder_config(tokenizer, **decoder),
        image_token_id=tokenizer.tokenizer.token_to_id("<image>"),
    )
    model = VisionLanguageModel(config).eval()
    model.tokenizer = tokenizer
    model.image_processor = ImagePreprocessor.clip(32)
    return model
