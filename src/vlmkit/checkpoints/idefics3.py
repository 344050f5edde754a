"""Hugging Face ``Idefics3ForConditionalGeneration`` / ``SmolVLMForConditionalGeneration``: config and key map.

Idefics3 and SmolVLM are one architecture under two names: a SigLIP-style tower without its pooling head,
read post-normed at its last layer; a connector that pixel-shuffles each ``r x r`` block of patch tokens into
one (``scale_factor`` r, 2 or 4) and projects it with one bias-free linear layer (``modality_projection``);
a Llama decoder. Each is an existing vlmkit part set by config, plus ``VlmConfig.image_splitting``: images
arrive as tiles and a global view (``vlmkit.processing.image_splitting``). Facts from transformers 5.24
(``configuration_idefics3.py``, ``modeling_idefics3.py``, ``modeling_smolvlm.py``):

- the vision config defaults differ from SigLIP's (width 1152, 16 heads, 32 px patches, 224 px images);
  the text config is a ``LlamaConfig`` (``rms_norm_eps`` 1e-5 unless given); ``image_token_id`` is 128257,
  ``scale_factor`` 2, ``tie_word_embeddings`` (the top-level field decides) false;
- ``Idefics3Connector.pixel_shuffle`` orders a merged token's features block row, block column, channel,
  which is ``vlmkit.models.projector.pixel_shuffle``;
- the tower's positions are fractional buckets (``Idefics3VisionEmbeddings``); for a whole crop they are the
  patch grid in order, except at grids where float rounding moves a bucket (19, 25, 29, ... patches a
  side), which are refused rather than approximated (no released checkpoint has one).

transformers has one key layout for both (no conversion mapping): ``model.vision_model.*``,
``model.connector.modality_projection.proj.weight``, ``model.text_model.*``, ``lm_head.weight``. Prefixes
are found from keys only each part ends with, so a bare ``Idefics3Model`` dump (no ``model.``) loads too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import torch

from vlmkit.checkpoints.clip_siglip import vision_config_from_hf, vision_rules
from vlmkit.checkpoints.keymap import Rule, copy, key_prefix
from vlmkit.checkpoints.llama import decoder_config_from_hf, decoder_rules, ignored_key
from vlmkit.config import ProjectorConfig, VisionConfig, VlmConfig
from vlmkit.errors import CheckpointError

MODEL_TYPES = ("idefics3", "smolvlm")

# ``Idefics3VisionConfig`` / ``SmolVLMVisionConfig`` defaults, for the fields a sparse vision_config leaves out.
_VISION = dict(
    hidden_size=1152,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=16,
    num_channels=3,
    image_size=224,
    patch_size=32,
    hidden_act="gelu_pytorch_tanh",
    layer_norm_eps=1e-6,
)
PROJECTION = "connector.modality_projection.proj.weight"


def _given(section: dict[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (section or {}).items() if value is not None}


def whole_crop_positions(grid: int) -> list[int]:
    """The position rows transformers' fractional buckets give the patches of a whole ``grid`` x ``grid`` crop,
    row by row on one axis (``Idefics3VisionEmbeddings.forward``, float32 as there)."""
    boundaries = torch.arange(1 / grid, 1.0, 1 / grid)
    step = 1.0 / torch.tensor([grid])
    coords = torch.clamp(torch.arange(grid, dtype=torch.float32)[None] * step[:, None], max=1.0 - 1e-6)
    return torch.bucketize(coords, boundaries, right=True)[0].tolist()


def _vision(hf: dict[str, Any], where: str) -> VisionConfig:
    section = {**_VISION, **_given(hf.get("vision_config")), "model_type": "siglip_vision_model"}
    # Read as a SigLIP tower with a head, then without it: mean pooling, which the VLM never reads.
    vision = vision_config_from_hf({**section, "vision_use_head": True}, f"{where}: vision_config")
    if whole_crop_positions(vision.grid) != list(range(vision.grid)):
        raise CheckpointError(
            f"{where}: vision_config gives a {vision.grid}x{vision.grid} patch grid, where transformers' fractional "
            "position buckets are not the patch order; unsupported"
        )
    return dataclasses.replace(vision, pooling="mean")


def vlm_config_from_hf(hf: dict[str, Any], where: str) -> VlmConfig:
    """Convert a Hugging Face Idefics3 or SmolVLM ``config.json``."""
    text = {"model_type": "llama", "rms_norm_eps": 1e-5, **_given(hf.get("text_config"))}
    if text["model_type"] != "llama":
        raise CheckpointError(f"{where}: text_config.model_type {text['model_type']!r} is not supported (llama)")
    text["tie_word_embeddings"] = bool(hf.get("tie_word_embeddings", False))
    scale = hf.get("scale_factor", 2)
    if not isinstance(scale, int) or scale < 1:
        raise CheckpointError(f"{where}: scale_factor {scale!r} is not a positive integer")
    return VlmConfig(
        vision=_vision(hf, where),
        projector=ProjectorConfig(kind="linear", bias=False, vision_layer=-1, vision_norm=True, pixel_shuffle=scale),
        decoder=decoder_config_from_hf(text, f"{where}: text_config"),
        image_token_id=hf.get("image_token_id", 128257),
        image_splitting=True,
    )


def idefics3_rules(config: VlmConfig, keys: Iterable[str], where: str) -> tuple[list[Rule], Callable[[str], bool]]:
    """The key map for this checkpoint's layout, and the predicate of source keys that may go unused."""
    keys = list(keys)
    vision = key_prefix(keys, ".embeddings.patch_embedding.weight", "vision tower", where)
    body = key_prefix(keys, "embed_tokens.weight", "language model", where)
    connector = key_prefix(keys, PROJECTION, "connector", where)
    heads = [key for key in keys if key.endswith("lm_head.weight")]
    head = heads[0].removesuffix("weight") if heads else "lm_head."
    rules = [
        *vision_rules(config.vision, "vision", vision),  # type: ignore[arg-type]
        *decoder_rules(config.decoder, "decoder.", body, head),
        copy("projector.fc1.weight", f"{connector}{PROJECTION}"),
    ]
    text_ignore = ignored_key(config.decoder, head)
    return rules, lambda key: text_ignore(key) or key.endswith("position_ids")
