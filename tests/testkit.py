"""Builders of tiny models and tokenizers for tests: they build in milliseconds, so every test makes its own."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vlmkit.config import ConSEConfig, DualEncoderConfig, EfficientNetConfig, TextConfig, clip_config, siglip_config


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


def perturb(model: torch.nn.Module, scale: float = 0.05) -> torch.nn.Module:
    """Random init leaves norms at 1/0 and biases at 0, which would hide key-mapping mistakes."""
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * scale)
    return model


def hf_clip(
    act: str = "quick_gelu",
    projection_dim: int = 24,
    image_size: int = 32,
    patch_size: int = 8,
    eos_token_id: int = 98,
    vision_width: int = 32,
    vision_heads: int = 4,
    vision_layers: int = 2,
    context_length: int = 16,
):
    """A tiny random (perturbed) ``transformers.CLIPModel`` in eval mode."""
    import transformers

    text = dict(
        vocab_size=99,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=context_length,
        hidden_act=act,
        eos_token_id=eos_token_id,
        bos_token_id=97,
        pad_token_id=1,
    )
    vision = dict(
        hidden_size=vision_width,
        intermediate_size=64,
        num_hidden_layers=vision_layers,
        num_attention_heads=vision_heads,
        image_size=image_size,
        patch_size=patch_size,
        hidden_act=act,
    )
    config = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)
    return perturb(transformers.CLIPModel(config)).eval()


TINY_EFFNET = EfficientNetConfig(
    image_size=32, stem_channels=8, stages=((3, 1, 1, 8, 1), (5, 2, 3, 12, 2)), head_channels=16, num_classes=7
)


def tiny_bert_text(vocab_size: int = 99) -> TextConfig:
    return TextConfig(
        vocab_size=vocab_size,
        context_length=40,
        width=32,
        layers=2,
        heads=4,
        mlp_dim=64,
        act="gelu",
        norm_eps=1e-12,
        causal=False,
        pooling="mean",
        norm_position="post",
        embedding_norm=True,
        type_vocab_size=2,
    )


def tiny_conse(top_k: int = 3, with_tokenizer: bool = False):
    """A random ConSE model at 32 px (its EfficientNet has 7 classes), with CLIP-style preprocessing and,
    ``with_tokenizer``, a tokenizer for text queries."""
    from vlmkit.models.conse import ConSEModel
    from vlmkit.processing.images import ImagePreprocessor

    tokenizer = tiny_tokenizer() if with_tokenizer else None
    text = tiny_bert_text(tokenizer.vocab_size) if tokenizer else tiny_bert_text()
    model = ConSEModel(ConSEConfig(vision=TINY_EFFNET, text=text, top_k=top_k)).eval()
    model.class_embeddings.copy_(F.normalize(torch.randn(7, 32), dim=-1))
    model.image_processor = ImagePreprocessor.clip(32)
    model.tokenizer = tokenizer
    return model


BERT_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "blue", "star", "circle", "what", "color"]
BERT_WORDS += ["is", "the", "?", ":", "user", "assistant", "small", "##s"]


def tiny_bert_directory(path):
    """A random tiny transformers ``BertModel`` with a WordPiece tokenizer.json, saved in ``path``."""
    import pytest

    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    tokenizer = Tokenizer(WordPiece({word: i for i, word in enumerate(BERT_WORDS)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path / "tokenizer.json"))
    config = transformers.BertConfig(
        vocab_size=len(BERT_WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_act="gelu",
    )
    torch.manual_seed(0)
    reference = transformers.BertModel(config, add_pooling_layer=False).eval()
    reference.save_pretrained(path)
    return reference


def noise_image(width: int, height: int, seed: int = 0):
    """A grey Gaussian-noise RGB picture, the same for the same arguments (PIL's ``effect_noise`` draws from
    C's global generator, so its pictures, and a random model's answers about them, change with test order)."""
    import numpy as np
    from PIL import Image

    values = np.random.default_rng([seed, width, height]).normal(128, 60, (height, width))
    return Image.fromarray(values.clip(0, 255).astype(np.uint8)).convert("RGB")
