"""Hugging Face checkpoints of the CLIP and SigLIP families: config conversion and key maps.

Key names are those of ``transformers``' ``CLIPModel`` and ``SiglipModel``. Fields missing from a
Hugging Face ``config.json`` take transformers' defaults, as transformers itself would. The vision
tower's map is public because LLaVA checkpoints nest the same CLIP/SigLIP tower (see ``llava``);
which family a directory is, ``hf`` decides.
"""

from __future__ import annotations

from typing import Any

from vlmkit.checkpoints.hf_activations import HF_ACTIVATIONS
from vlmkit.checkpoints.keymap import BlockNames, Rule, block_rules, copy, reshape
from vlmkit.config import DualEncoderConfig, TextConfig, VisionConfig
from vlmkit.errors import CheckpointError

_CLIP_TEXT = dict(
    vocab_size=49408,
    hidden_size=512,
    intermediate_size=2048,
    num_hidden_layers=12,
    num_attention_heads=8,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    pad_token_id=1,
    eos_token_id=49407,
)
_CLIP_VISION = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    num_channels=3,
    image_size=224,
    patch_size=32,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
)
_SIGLIP_TEXT = dict(
    _CLIP_TEXT,
    vocab_size=32000,
    hidden_size=768,
    intermediate_size=3072,
    num_attention_heads=12,
    max_position_embeddings=64,
    hidden_act="gelu_pytorch_tanh",
    layer_norm_eps=1e-6,
    pad_token_id=1,
    eos_token_id=49407,
    projection_size=None,
)
_SIGLIP_VISION = dict(
    _CLIP_VISION, patch_size=16, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, vision_use_head=True
)

SUPPORTED_MODEL_TYPES = ("clip", "siglip")

# One transformer block of ``CLIPEncoderLayer`` / ``SiglipEncoderLayer``: our name -> theirs.
_BLOCK: BlockNames = {
    "norm1": "layer_norm1",
    "attn.qkv": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    "attn.out": "self_attn.out_proj",
    "norm2": "layer_norm2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}


def _section(hf: dict[str, Any], name: str, defaults: dict[str, Any], where: str) -> dict[str, Any]:
    values = dict(defaults)
    values.update({k: v for k, v in (hf.get(name) or {}).items() if k in defaults and v is not None})
    act = values["hidden_act"]
    if act not in HF_ACTIVATIONS:
        raise CheckpointError(f"{where}: {name}.hidden_act {act!r} is not supported ({sorted(HF_ACTIVATIONS)})")
    for key in ("image_size", "patch_size"):
        if isinstance(values.get(key), (list, tuple)):
            if len(set(values[key])) != 1:
                raise CheckpointError(f"{where}: {name}.{key} {values[key]} is not square; vlmkit needs square")
            values[key] = values[key][0]
    return values


def _vision(v: dict[str, Any], siglip: bool) -> VisionConfig:
    common = dict(
        image_size=v["image_size"],
        patch_size=v["patch_size"],
        channels=v["num_channels"],
        width=v["hidden_size"],
        layers=v["num_hidden_layers"],
        heads=v["num_attention_heads"],
        mlp_dim=v["intermediate_size"],
        act=HF_ACTIVATIONS[v["hidden_act"]],
        norm_eps=v["layer_norm_eps"],
    )
    if not siglip:
        return VisionConfig(**common)
    if not v["vision_use_head"]:
        raise CheckpointError("SigLIP vision towers without the attention-pooling head are not supported")
    return VisionConfig(**common, class_token=False, pre_norm=False, pooling="map", post_norm="all", patch_bias=True)


def _text(t: dict[str, Any], siglip: bool) -> TextConfig:
    eos = t["eos_token_id"]
    eos = eos[0] if isinstance(eos, list) else eos
    common = dict(
        vocab_size=t["vocab_size"],
        context_length=t["max_position_embeddings"],
        width=t["hidden_size"],
        layers=t["num_hidden_layers"],
        heads=t["num_attention_heads"],
        mlp_dim=t["intermediate_size"],
        act=HF_ACTIVATIONS[t["hidden_act"]],
        norm_eps=t["layer_norm_eps"],
        eos_token_id=eos,
        pad_token_id=t["pad_token_id"] if t["pad_token_id"] is not None else 0,
    )
    if siglip:
        return TextConfig(**common, causal=False, pooling="last")
    return TextConfig(**common, causal=True, pooling="eos", pool_at_argmax=eos == 2)


def dual_encoder_config_from_hf(hf: dict[str, Any], where: str) -> DualEncoderConfig:
    """Convert a Hugging Face CLIP or SigLIP ``config.json`` to a ``DualEncoderConfig``."""
    model_type = hf.get("model_type")
    if model_type == "clip":
        vision = _vision(_section(hf, "vision_config", _CLIP_VISION, where), siglip=False)
        text = _text(_section(hf, "text_config", _CLIP_TEXT, where), siglip=False)
        return DualEncoderConfig(
            vision=vision,
            text=text,
            embed_dim=hf.get("projection_dim") or 512,
            logit_scale_init=hf.get("logit_scale_init_value", 2.6592),
        )
    if model_type == "siglip":
        t = _section(hf, "text_config", _SIGLIP_TEXT, where)
        vision = _vision(_section(hf, "vision_config", _SIGLIP_VISION, where), siglip=True)
        text = _text(t, siglip=True)
        if (t["projection_size"] or t["hidden_size"]) != vision.width:
            raise CheckpointError(
                f"{where}: text projection_size {t['projection_size']} differs from the vision "
                f"width {vision.width}; SigLIP needs them equal"
            )
        return DualEncoderConfig(
            vision=vision,
            text=text,
            embed_dim=vision.width,
            image_projection="none",
            text_projection="linear_bias",
            head="sigmoid",
            logit_scale_init=2.302585,
            logit_bias_init=-10.0,
        )
    raise CheckpointError(
        f"{where}: model_type {model_type!r} is not a supported family ({', '.join(SUPPORTED_MODEL_TYPES)})"
    )


def _blocks(ours: str, theirs: str, layers: int) -> list[Rule]:
    return block_rules(f"{ours}.transformer.blocks", f"{theirs}.encoder.layers", layers, _BLOCK)


def vision_config_from_hf(hf: dict[str, Any], where: str) -> VisionConfig:
    """Convert a ``CLIPVisionConfig`` / ``SiglipVisionConfig`` dict (as nested in LLaVA's ``vision_config``)."""
    model_type = hf.get("model_type", "clip_vision_model")
    if model_type not in ("clip_vision_model", "siglip_vision_model"):
        raise CheckpointError(
            f"{where}: vision tower model_type {model_type!r} is not supported (clip_vision_model, siglip_vision_model)"
        )
    siglip = model_type == "siglip_vision_model"
    values = _section({"vision_config": hf}, "vision_config", _SIGLIP_VISION if siglip else _CLIP_VISION, where)
    return _vision(values, siglip=siglip)


def vision_rules(vision: VisionConfig, ours: str, theirs: str) -> list[Rule]:
    """The key map of a ViT from ``{theirs}.embeddings...`` (CLIP or SigLIP layout) to ``{ours}.*``."""
    rules = [
        copy(f"{ours}.patch_embed.weight", f"{theirs}.embeddings.patch_embedding.weight"),
        copy(f"{ours}.position_embedding", f"{theirs}.embeddings.position_embedding.weight"),
        copy(f"{ours}.post_norm.weight", f"{theirs}.post_layernorm.weight"),
        copy(f"{ours}.post_norm.bias", f"{theirs}.post_layernorm.bias"),
        *_blocks(ours, theirs, vision.layers),
    ]
    if vision.patch_bias:
        rules.append(copy(f"{ours}.patch_embed.bias", f"{theirs}.embeddings.patch_embedding.bias"))
    if vision.class_token:
        rules.append(copy(f"{ours}.class_embedding", f"{theirs}.embeddings.class_embedding"))
    if vision.pre_norm:
        rules += [copy(f"{ours}.pre_norm.{p}", f"{theirs}.pre_layrnorm.{p}") for p in ("weight", "bias")]
    if vision.pooling == "map":
        h = f"{theirs}.head"
        rules += [
            copy(f"{ours}.head.probe", f"{h}.probe"),
            copy(f"{ours}.head.attn.qkv.weight", f"{h}.attention.in_proj_weight"),
            copy(f"{ours}.head.attn.qkv.bias", f"{h}.attention.in_proj_bias"),
        ]
        for p in ("weight", "bias"):
            rules += [
                copy(f"{ours}.head.attn.out.{p}", f"{h}.attention.out_proj.{p}"),
                copy(f"{ours}.head.norm.{p}", f"{h}.layernorm.{p}"),
                copy(f"{ours}.head.mlp.fc1.{p}", f"{h}.mlp.fc1.{p}"),
                copy(f"{ours}.head.mlp.fc2.{p}", f"{h}.mlp.fc2.{p}"),
            ]
    return rules


def dual_encoder_rules(config: DualEncoderConfig) -> list[Rule]:
    """The key map from a Hugging Face CLIPModel / SiglipModel state dict to a vlmkit DualEncoder."""
    v, t = "vision_model", "text_model"
    siglip = config.head == "sigmoid"
    rules = [
        *vision_rules(config.vision, "vision", v),
        copy("text.token_embedding.weight", f"{t}.embeddings.token_embedding.weight"),
        copy("text.position_embedding", f"{t}.embeddings.position_embedding.weight"),
        copy("text.final_norm.weight", f"{t}.final_layer_norm.weight"),
        copy("text.final_norm.bias", f"{t}.final_layer_norm.bias"),
        reshape("logit_scale", "logit_scale"),
        *_blocks("text", t, config.text.layers),
    ]
    if siglip:
        rules.append(reshape("logit_bias", "logit_bias"))
        rules += [copy(f"text_projection.{p}", f"{t}.head.{p}") for p in ("weight", "bias")]
    else:
        rules += [
            copy("image_projection.weight", "visual_projection.weight"),
            copy("text_projection.weight", "text_projection.weight"),
        ]
    return rules


def is_ignored_hf_key(key: str) -> bool:
    """Buffers some checkpoints carry that hold no learned state."""
    return key.endswith("position_ids")
