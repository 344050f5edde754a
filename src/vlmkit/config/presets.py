"""Named shapes: the configs of known model sizes (CLIP, SigLIP, SmolLM2) and the tiny ones for ShapesWorld."""

from __future__ import annotations

from vlmkit.config.base import Activation
from vlmkit.config.encoders import DualEncoderConfig, TextConfig, VisionConfig
from vlmkit.config.vlm import DecoderConfig, ProjectorConfig, VlmConfig


def clip_config(
    vision_width: int = 768,
    vision_layers: int = 12,
    vision_heads: int = 12,
    patch_size: int = 32,
    image_size: int = 224,
    text_width: int = 512,
    text_layers: int = 12,
    text_heads: int = 8,
    embed_dim: int = 512,
    vocab_size: int = 49408,
    context_length: int = 77,
    act: Activation = "quick_gelu",
) -> DualEncoderConfig:
    """A CLIP-flavoured dual encoder; the defaults are ViT-B/32."""
    vision = VisionConfig(
        image_size=image_size,
        patch_size=patch_size,
        width=vision_width,
        layers=vision_layers,
        heads=vision_heads,
        mlp_dim=4 * vision_width,
        act=act,
    )
    text = TextConfig(
        vocab_size=vocab_size,
        context_length=context_length,
        width=text_width,
        layers=text_layers,
        heads=text_heads,
        mlp_dim=4 * text_width,
        act=act,
        eos_token_id=vocab_size - 1,
    )
    return DualEncoderConfig(vision=vision, text=text, embed_dim=embed_dim)


def siglip_config(
    width: int = 768,
    layers: int = 12,
    heads: int = 12,
    patch_size: int = 16,
    image_size: int = 224,
    vocab_size: int = 32000,
    context_length: int = 64,
) -> DualEncoderConfig:
    """A SigLIP-flavoured dual encoder; the defaults are ViT-B/16 at 224 px."""
    vision = VisionConfig(
        image_size=image_size,
        patch_size=patch_size,
        width=width,
        layers=layers,
        heads=heads,
        mlp_dim=4 * width,
        act="gelu_tanh",
        norm_eps=1e-6,
        class_token=False,
        pre_norm=False,
        pooling="map",
        post_norm="all",
        patch_bias=True,
    )
    text = TextConfig(
        vocab_size=vocab_size,
        context_length=context_length,
        width=width,
        layers=layers,
        heads=heads,
        mlp_dim=4 * width,
        act="gelu_tanh",
        norm_eps=1e-6,
        causal=False,
        pooling="last",
        eos_token_id=1,
        pad_token_id=1,
    )
    return DualEncoderConfig(
        vision=vision,
        text=text,
        embed_dim=width,
        image_projection="none",
        text_projection="linear_bias",
        head="sigmoid",
        logit_scale_init=2.302585,
        logit_bias_init=-10.0,
    )


def smollm2_135m_config(vocab_size: int = 49152) -> DecoderConfig:
    """SmolLM2-135M's shape: 30 blocks of width 576, 9 query and 3 key/value heads, tied embeddings."""
    return DecoderConfig(
        vocab_size=vocab_size,
        width=576,
        layers=30,
        heads=9,
        kv_heads=3,
        mlp_dim=1536,
        max_positions=8192,
        rope_theta=100000.0,
        bos_token_id=0 if vocab_size == 49152 else None,
        eos_token_ids=(0,),
        pad_token_id=0,
    )


def tiny_decoder_config(
    vocab_size: int = 2048, bos_token_id: int | None = 1, eos_token_id: int = 2, pad_token_id: int = 0
) -> DecoderConfig:
    """A ~3M-parameter decoder (6 blocks of width 192, GQA 6/2 heads) for ShapesWorld-sized data."""
    return DecoderConfig(
        vocab_size=vocab_size,
        width=192,
        layers=6,
        heads=6,
        kv_heads=2,
        mlp_dim=512,
        max_positions=512,
        rope_theta=10000.0,
        bos_token_id=bos_token_id,
        eos_token_ids=(eos_token_id,),
        pad_token_id=pad_token_id,
    )


def tiny_vlm_config(
    vocab_size: int = 2048,
    image_token_id: int = 3,
    image_size: int = 64,
    bos_token_id: int | None = 1,
    eos_token_id: int = 2,
    pad_token_id: int = 0,
) -> VlmConfig:
    """A ~4M-parameter VLM for ShapesWorld: a 4-block ViT (8 px patches), 2x2 pixel shuffle, tiny decoder.

    A 64 px image is an 8x8 patch grid, 16 decoder positions after the pixel shuffle.
    """
    vision = VisionConfig(image_size=image_size, patch_size=8, width=128, layers=4, heads=4, mlp_dim=512, act="gelu")
    return VlmConfig(
        vision=vision,
        projector=ProjectorConfig(kind="mlp", vision_layer=-1, pixel_shuffle=2),
        decoder=tiny_decoder_config(vocab_size, bos_token_id, eos_token_id, pad_token_id),
        image_token_id=image_token_id,
    )
