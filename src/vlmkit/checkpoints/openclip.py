"""open_clip checkpoints (``open_clip_config.json`` + ``open_clip_model.safetensors``).

open_clip stores attention as ``nn.MultiheadAttention`` (a fused ``in_proj`` that maps straight onto
vlmkit's fused ``qkv``) and its projections as (width, embed_dim) matrices used as ``x @ proj``, so
they are transposed into vlmkit's ``nn.Linear`` weights. Only the ViT + text-transformer CLIP
layout is supported; pickled ``.bin`` files are refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from vlmkit.checkpoints.keymap import BlockNames, Rule, block_rules, copy, load_mapped, reshape, transpose
from vlmkit.checkpoints.weights import read_safetensors_file
from vlmkit.config import DualEncoderConfig, TextConfig, VisionConfig
from vlmkit.errors import CheckpointError
from vlmkit.models import build_model
from vlmkit.processing.images import ImagePreprocessor

CONFIG = "open_clip_config.json"
WEIGHTS = "open_clip_model.safetensors"

# One ``ResidualAttentionBlock``: our name -> theirs (``attn.in_proj_`` takes ``weight``/``bias`` directly).
_BLOCK: BlockNames = {
    "norm1": "ln_1",
    "attn.qkv": "attn.in_proj_",
    "attn.out": "attn.out_proj",
    "norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}


def _model_cfg(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cfg = data["model_cfg"]
        cfg["vision_cfg"], cfg["text_cfg"], cfg["embed_dim"]
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from None
    except RecursionError:
        raise CheckpointError(f"{path}: JSON nested too deeply to be a config") from None
    except (KeyError, TypeError) as error:
        raise CheckpointError(
            f"{path}: missing field {error} (expected model_cfg with vision_cfg, text_cfg, embed_dim)"
        ) from None
    return data


def config_from_open_clip(cfg: dict[str, Any], where: str) -> DualEncoderConfig:
    vision, text = cfg["vision_cfg"], cfg["text_cfg"]
    if "timm_model_name" in vision or "hf_model_name" in text:
        raise CheckpointError(f"{where}: timm or Hugging Face towers inside open_clip are not supported")
    act = "quick_gelu" if cfg.get("quick_gelu") else "gelu"
    width = vision.get("width", 768)
    text_width = text.get("width", 512)
    vocab = text.get("vocab_size", 49408)
    return DualEncoderConfig(
        vision=VisionConfig(
            image_size=vision.get("image_size", 224),
            patch_size=vision.get("patch_size", 32),
            width=width,
            layers=vision.get("layers", 12),
            heads=width // vision.get("head_width", 64),
            mlp_dim=int(width * vision.get("mlp_ratio", 4.0)),
            act=act,
        ),
        text=TextConfig(
            vocab_size=vocab,
            context_length=text.get("context_length", 77),
            width=text_width,
            layers=text.get("layers", 12),
            heads=text.get("heads", 8),
            mlp_dim=int(text_width * text.get("mlp_ratio", 4.0)),
            act=act,
            eos_token_id=vocab - 1,
            pool_at_argmax=True,
        ),
        embed_dim=cfg["embed_dim"],
    )


def _blocks(ours: str, theirs: str, layers: int) -> list[Rule]:
    return block_rules(f"{ours}.transformer.blocks", f"{theirs}.resblocks", layers, _BLOCK)


def open_clip_rules(config: DualEncoderConfig) -> list[Rule]:
    rules = [
        copy("vision.patch_embed.weight", "visual.conv1.weight"),
        copy("vision.class_embedding", "visual.class_embedding"),
        copy("vision.position_embedding", "visual.positional_embedding"),
        transpose("image_projection.weight", "visual.proj"),
        copy("text.token_embedding.weight", "token_embedding.weight"),
        copy("text.position_embedding", "positional_embedding"),
        transpose("text_projection.weight", "text_projection"),
        reshape("logit_scale", "logit_scale"),
        *_blocks("vision", "visual.transformer", config.vision.layers),
        *_blocks("text", "transformer", config.text.layers),
    ]
    for p in ("weight", "bias"):
        rules += [
            copy(f"vision.pre_norm.{p}", f"visual.ln_pre.{p}"),
            copy(f"vision.post_norm.{p}", f"visual.ln_post.{p}"),
            copy(f"text.final_norm.{p}", f"ln_final.{p}"),
        ]
    return rules


def read(directory: Path) -> tuple[DualEncoderConfig, nn.Module]:
    """The config and the converted vlmkit model of an open_clip directory (the model built once)."""
    where = str(directory / CONFIG)
    try:
        config = config_from_open_clip(_model_cfg(directory)["model_cfg"], where).checked(where)
    except (TypeError, ValueError, AttributeError, ZeroDivisionError) as error:  # a field of the wrong kind
        raise CheckpointError(f"{where}: unexpected field values in model_cfg ({error})") from None
    weights = directory / WEIGHTS
    if not weights.exists():
        raise CheckpointError(f"{directory}: no {WEIGHTS} (only safetensors weights are loaded, never pickles)")
    model = build_model(config, device="meta")
    load_mapped(
        model,
        open_clip_rules(config),
        read_safetensors_file(weights),
        str(weights),
        ignore=lambda key: key == "attn_mask",
    )
    return config, model


def image_processor(directory: Path) -> ImagePreprocessor:
    data = _model_cfg(directory)
    size = data["model_cfg"]["vision_cfg"].get("image_size", 224)
    preprocess = data.get("preprocess_cfg", {})
    base = ImagePreprocessor.clip(size)
    return ImagePreprocessor(
        size=base.size,
        resize_mode=base.resize_mode,
        resample=base.resample,
        mean=tuple(preprocess.get("mean", base.mean)),
        std=tuple(preprocess.get("std", base.std)),
    )
