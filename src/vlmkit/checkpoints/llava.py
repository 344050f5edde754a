"""Hugging Face ``LlavaForConditionalGeneration`` checkpoints: config conversion and key map.

Two key layouts exist and both load: the one of the hub's llava-hf checkpoints (and of what
transformers 5 writes) with ``vision_tower.[vision_model.]``, ``multi_modal_projector.``,
``language_model.model.`` and ``language_model.lm_head.``, and transformers 5's in-memory layout
with ``model.vision_tower.``, ``model.multi_modal_projector.``, ``model.language_model.`` and
``lm_head.``. Each prefix is found from a key only it ends with, instead of listing layouts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from vlmkit.checkpoints.clip_siglip import vision_config_from_hf, vision_rules
from vlmkit.checkpoints.hf_activations import HF_ACTIVATIONS
from vlmkit.checkpoints.keymap import Rule, copy, key_prefix
from vlmkit.checkpoints.llama import decoder_config_from_hf, decoder_rules, ignored_key
from vlmkit.config import ProjectorConfig, VlmConfig
from vlmkit.errors import CheckpointError

MODEL_TYPES = ("llava",)


def tied_head(hf: dict[str, Any], text_field_counts: bool) -> bool:
    """Whether the decoder's head is its embedding matrix, as transformers 5 decides it.

    transformers 5 reads the top-level ``tie_word_embeddings``. Configs written before v5 kept the
    field in ``text_config``, so ``LlavaConfig`` (and ``Qwen2VLConfig``) also tie when the text
    config's field is true (``text_field_counts``); ``LlavaNextConfig`` does not, and its top-level
    default (false) keeps a separate head whatever the text config says.
    """
    text = hf.get("text_config") or {}
    return bool(hf.get("tie_word_embeddings") or (text_field_counts and text.get("tie_word_embeddings")))


def vlm_config_from_hf(hf: dict[str, Any], where: str, text_tie_counts: bool = True) -> VlmConfig:
    """Convert a Hugging Face LLaVA ``config.json`` (``text_tie_counts``: see ``tied_head``)."""
    layer = hf.get("vision_feature_layer", -2)
    if not isinstance(layer, int):
        raise CheckpointError(f"{where}: vision_feature_layer {layer!r}: only a single layer is supported")
    strategy = hf.get("vision_feature_select_strategy", "default")
    if strategy not in ("default", "full"):
        raise CheckpointError(f"{where}: vision_feature_select_strategy {strategy!r} is not 'default' or 'full'")
    act = hf.get("projector_hidden_act", "gelu")
    if act not in HF_ACTIVATIONS:
        raise CheckpointError(f"{where}: projector_hidden_act {act!r} is not supported ({sorted(HF_ACTIVATIONS)})")
    text = dict(hf.get("text_config") or {})
    text.setdefault("model_type", "llama")
    text["tie_word_embeddings"] = tied_head(hf, text_tie_counts)
    image_token = hf.get("image_token_index", hf.get("image_token_id", 32000))
    return VlmConfig(
        vision=vision_config_from_hf(hf.get("vision_config") or {}, f"{where}: vision_config"),
        projector=ProjectorConfig(
            kind="mlp",
            act=HF_ACTIVATIONS[act],
            bias=bool(hf.get("multimodal_projector_bias", True)),
            vision_layer=layer,
            drop_class_token=strategy == "default",
        ),
        decoder=decoder_config_from_hf(text, f"{where}: text_config"),
        image_token_id=image_token,
        chat_template="llava",
    )


def llava_rules(config: VlmConfig, keys: Iterable[str], where: str) -> tuple[list[Rule], Callable[[str], bool]]:
    """The key map for this checkpoint's layout, and the predicate of source keys that may go unused."""
    keys = list(keys)
    vision = key_prefix(keys, ".embeddings.patch_embedding.weight", "vision tower", where)
    body = key_prefix(keys, "embed_tokens.weight", "language model", where)
    projector = key_prefix(keys, "linear_1.weight", "projector", where)
    heads = [key for key in keys if key.endswith("lm_head.weight")]
    head = heads[0].removesuffix("weight") if heads else "lm_head."
    rules = [
        *vision_rules(config.vision, "vision", vision),
        *decoder_rules(config.decoder, "decoder.", body, head),
    ]
    for p in ("weight", "bias") if config.projector.bias else ("weight",):
        rules += [
            copy(f"projector.fc1.{p}", f"{projector}linear_1.{p}"),
            copy(f"projector.fc2.{p}", f"{projector}linear_2.{p}"),
        ]
    text_ignore = ignored_key(config.decoder, head)
    return rules, lambda key: text_ignore(key) or key.endswith("position_ids")
