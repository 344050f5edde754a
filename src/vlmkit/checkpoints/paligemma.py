"""Hugging Face ``PaliGemmaForConditionalGeneration`` checkpoints: config conversion and key map.

PaliGemma is a SigLIP tower (normally without its pooling head) whose post-normed last tokens go
through one linear layer into a Gemma decoder read as a prefix-LM. Each part is an existing vlmkit
block set by config (see ``DecoderConfig``: ``norm="rms_unit_offset"``, ``embed_scale``, GeGLU,
``position_offset=1``, ``attention="prefix"``); nothing here is a new module.

Facts taken from transformers 5.24 (``modeling_paligemma.py``, ``modeling_gemma.py``):

- Gemma's token embeddings are multiplied by ``sqrt(hidden_size)`` inside the embedding layer, and
  the projected image features are placed at the image tokens after it, unscaled. (Older
  transformers divided the features by ``sqrt(hidden_size)`` and scaled every input embedding; the
  product is the same.)
- Positions start at 1 (``position_ids = arange + 1``, and ``+ 1`` in generation).
- ``token_type_ids`` 0 mark the image and prefix (one bidirectional block), 1 the suffix (causal).
- Gemma's ``hidden_act="gelu"`` is its tanh approximation (``GemmaConfig`` rewrites it).

Two key layouts load, found from keys only each part ends with (as for LLaVA): the saved one
(``vision_tower.[vision_model.]``, ``multi_modal_projector.``, ``language_model.model.``) and
transformers 5's in-memory one (``model.vision_tower.``, ``model.multi_modal_projector.``,
``model.language_model.``, ``lm_head.``). PaliGemma 2 (a Gemma 2 decoder) is not supported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from vlmkit.checkpoints.clip_siglip import vision_config_from_hf, vision_rules
from vlmkit.checkpoints.hf_activations import HF_ACTIVATIONS
from vlmkit.checkpoints.keymap import Rule, copy, key_prefix
from vlmkit.checkpoints.llama import decoder_config_from_hf, decoder_rules, ignored_key
from vlmkit.config import ProjectorConfig, VisionConfig, VlmConfig
from vlmkit.errors import CheckpointError

MODEL_TYPES = ("paligemma",)

# ``GemmaConfig``'s defaults, for the fields a sparse ``text_config`` leaves out.
_GEMMA = dict(
    vocab_size=256000,
    hidden_size=3072,
    intermediate_size=24576,
    num_hidden_layers=28,
    num_attention_heads=16,
    num_key_value_heads=16,
    head_dim=256,
    hidden_act="gelu_pytorch_tanh",
    max_position_embeddings=8192,
    rms_norm_eps=1e-6,
    pad_token_id=0,
    eos_token_id=1,
    bos_token_id=2,
    tie_word_embeddings=True,
    attention_bias=False,
)
# ``PaliGemmaConfig``'s sub-configs when a ``config.json`` has none (paligemma-3b-pt-224).
_PALIGEMMA_TEXT = dict(
    hidden_size=2048,
    num_hidden_layers=18,
    intermediate_size=16384,
    num_attention_heads=8,
    num_key_value_heads=1,
    vocab_size=257152,
)
_PALIGEMMA_VISION = dict(
    model_type="siglip_vision_model",
    intermediate_size=4096,
    hidden_size=1152,
    patch_size=14,
    image_size=224,
    num_hidden_layers=27,
    num_attention_heads=16,
    vision_use_head=False,
)


def _given(section: dict[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (section or {}).items() if value is not None}


def _vision(hf: dict[str, Any], where: str) -> VisionConfig:
    """The SigLIP tower; without its head (PaliGemma's) it keeps mean pooling, which PaliGemma never reads."""
    section = {"model_type": "siglip_vision_model", **(_given(hf.get("vision_config")) or _PALIGEMMA_VISION)}
    headless = not section.get("vision_use_head", True)
    vision = vision_config_from_hf({**section, "vision_use_head": True}, f"{where}: vision_config")
    return dataclasses.replace(vision, pooling="mean") if headless else vision


def vlm_config_from_hf(hf: dict[str, Any], where: str) -> VlmConfig:
    """Convert a Hugging Face PaliGemma ``config.json``."""
    given = _given(hf.get("text_config"))
    model_type = given.get("model_type", "gemma")
    if model_type != "gemma":
        raise CheckpointError(
            f"{where}: text_config.model_type {model_type!r} is not supported (PaliGemma with a 'gemma' decoder; "
            "PaliGemma 2's gemma2 is not)"
        )
    text = {**_GEMMA, **(given or _PALIGEMMA_TEXT)}
    act = text.get("hidden_activation") or text["hidden_act"]
    act = "gelu_pytorch_tanh" if act == "gelu" else act
    if act not in HF_ACTIVATIONS:
        raise CheckpointError(f"{where}: text_config.hidden_act {act!r} is not supported ({sorted(HF_ACTIVATIONS)})")
    tied = bool(hf.get("tie_word_embeddings", True) and text["tie_word_embeddings"])
    # Gemma's config.json has Llama's field names; what differs is set on the result.
    llama_fields = {**text, "model_type": "llama", "hidden_act": act, "tie_word_embeddings": tied}
    decoder = decoder_config_from_hf(llama_fields, f"{where}: text_config")
    decoder = dataclasses.replace(
        decoder, norm="rms_unit_offset", embed_scale=True, position_offset=1, attention="prefix"
    )
    projection = hf.get("projection_dim", decoder.width)
    if projection != decoder.width:
        raise CheckpointError(
            f"{where}: projection_dim {projection} differs from text_config.hidden_size {decoder.width}"
        )
    return VlmConfig(
        vision=_vision(hf, where),
        projector=ProjectorConfig(kind="linear", bias=True, vision_layer=-1, vision_norm=True),
        decoder=decoder,
        image_token_id=hf.get("image_token_index", hf.get("image_token_id", 256000)),
        chat_template="paligemma",
    )


def paligemma_rules(config: VlmConfig, keys: Iterable[str], where: str) -> tuple[list[Rule], Callable[[str], bool]]:
    """The key map for this checkpoint's layout, and the predicate of source keys that may go unused."""
    keys = list(keys)
    vision = key_prefix(keys, ".embeddings.patch_embedding.weight", "vision tower", where)
    body = key_prefix(keys, "embed_tokens.weight", "language model", where)
    projector = key_prefix(keys, "multi_modal_projector.linear.weight", "projector", where)
    heads = [key for key in keys if key.endswith("lm_head.weight")]
    head = heads[0].removesuffix("weight") if heads else "lm_head."
    rules = [
        *vision_rules(config.vision, "vision", vision),  # type: ignore[arg-type]
        *decoder_rules(config.decoder, "decoder.", body, head),
        *(copy(f"projector.fc1.{p}", f"{projector}multi_modal_projector.linear.{p}") for p in ("weight", "bias")),
    ]
    text_ignore = ignored_key(config.decoder, head)
    return rules, lambda key: text_ignore(key) or key.endswith("position_ids")
