"""Hugging Face ``Qwen2VLForConditionalGeneration`` / ``Qwen2_5_VLForConditionalGeneration``: config and key map.

Facts from transformers 5.24 (``configuration_qwen2_vl.py``, ``configuration_qwen2_5_vl.py``, the modeling files):

- The decoder is Qwen2 (q/k/v biases, no o bias), its rotary ``rope_parameters`` (or the older ``rope_scaling``,
  type "mrope") carry ``mrope_section`` (default 16, 24, 24); ``rope_theta`` defaults to 1e6. Older hub configs
  are flat: the text fields at the top level, no ``text_config``.
- Qwen2-VL's tower: ``embed_dim`` wide, ``hidden_size`` the output (the decoder's width), an MLP of
  ``embed_dim * mlp_ratio`` (quick_gelu), LayerNorm. Qwen2.5-VL's: ``hidden_size`` wide, ``out_hidden_size`` the
  output, a SwiGLU of ``intermediate_size`` with biases, RMSNorm, window attention (``window_size``,
  ``fullatt_block_indexes``) and ``tokens_per_second`` for video positions. Norms use eps 1e-6.
- The patch embedding is a bias-free Conv3d (out, C, T, P, P), read here as the matrix it is.

Both key layouts load, each part found from a key only it ends with: what transformers writes
(``visual.*``, ``model.*``, ``lm_head``) and its in-memory one (``model.visual.*``, ``model.language_model.*``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from vlmkit.checkpoints.hf_activations import HF_ACTIVATIONS
from vlmkit.checkpoints.keymap import Rule, block_rules, copy, key_prefix, reshape
from vlmkit.checkpoints.llama import decoder_config_from_hf, decoder_rules, ignored_key
from vlmkit.checkpoints.llava import tied_head
from vlmkit.config.qwen2_vl import Qwen2VLConfig, QwenVisionConfig
from vlmkit.errors import CheckpointError

MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")

# ``Qwen2VLTextConfig``'s defaults (the same for 2.5), for fields a config leaves out.
_TEXT = dict(
    vocab_size=152064,
    hidden_size=8192,
    intermediate_size=29568,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    hidden_act="silu",
    max_position_embeddings=32768,
    rms_norm_eps=1e-5,
    bos_token_id=151643,
    eos_token_id=151645,
)
_VISION = {
    "qwen2_vl": dict(depth=32, embed_dim=1280, hidden_size=3584, hidden_act="quick_gelu", mlp_ratio=4, num_heads=16),
    "qwen2_5_vl": dict(
        depth=32,
        hidden_size=3584,
        out_hidden_size=3584,
        hidden_act="silu",
        intermediate_size=3420,
        num_heads=16,
        tokens_per_second=4,
        window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31],
    ),
}
_VISION_FIELDS = {
    "qwen2_vl": {"depth", "embed_dim", "hidden_size", "hidden_act", "mlp_ratio", "num_heads"},
    "qwen2_5_vl": {
        "depth",
        "hidden_size",
        "out_hidden_size",
        "hidden_act",
        "intermediate_size",
        "num_heads",
        "tokens_per_second",
        "window_size",
        "fullatt_block_indexes",
    },
}
_VISION_COMMON = {"in_channels", "patch_size", "spatial_merge_size", "temporal_patch_size", "rope_parameters"}
# Older hub configs repeat two sizes under other names, which transformers ignores; they must agree.
_VISION_ALIASES = {"in_chans": "in_channels", "spatial_patch_size": "patch_size"}
_VISION_IGNORED = {"model_type", "initializer_range", "dtype", "torch_dtype", "_name_or_path", "architectures"}
_VISION_IGNORED |= {"transformers_version", "num_hidden_layers", "num_attention_heads", "attn_implementation"}


def _vision(section: dict[str, Any], model_type: str, where: str) -> tuple[QwenVisionConfig, float]:
    """The tower's config and (Qwen2.5-VL) its ``tokens_per_second``; an unknown field is named, not ignored."""
    known = _VISION_FIELDS[model_type] | _VISION_COMMON | _VISION_IGNORED | set(_VISION_ALIASES)
    unknown = sorted(set(section) - known)
    if unknown:
        raise CheckpointError(f"{where}: vision_config field {unknown[0]!r} is not supported for {model_type}")
    hf = {"in_channels": 3, "patch_size": 14, **_VISION[model_type], **section}
    for alias, name in _VISION_ALIASES.items():
        if alias in hf and hf[alias] != hf[name]:
            raise CheckpointError(f"{where}: vision_config.{alias} {hf[alias]} differs from {name} {hf[name]}")
    act = hf["hidden_act"]
    if act not in HF_ACTIVATIONS:
        raise CheckpointError(f"{where}: vision_config.hidden_act {act!r} is not supported ({sorted(HF_ACTIVATIONS)})")
    rope = dict(hf.get("rope_parameters") or {})
    if rope.get("rope_type", "axial") != "axial":
        raise CheckpointError(f"{where}: vision_config rope_type {rope['rope_type']!r} is not 'axial'")
    shared = dict(
        layers=hf["depth"],
        heads=hf["num_heads"],
        act=HF_ACTIVATIONS[act],
        patch_size=hf["patch_size"],
        temporal_patch_size=hf.get("temporal_patch_size", 2),
        in_channels=hf["in_channels"],
        merge_size=hf.get("spatial_merge_size", 2),
        rope_theta=float(rope.get("rope_theta", 10000.0)),
    )
    if model_type == "qwen2_vl":
        width = hf["embed_dim"]
        return QwenVisionConfig(
            width=width, mlp_dim=width * hf["mlp_ratio"], out_width=hf["hidden_size"], **shared
        ), 0.0
    vision = QwenVisionConfig(
        width=hf["hidden_size"],
        mlp_dim=hf["intermediate_size"],
        out_width=hf["out_hidden_size"],
        norm="rms",
        mlp="gated",
        window_size=hf["window_size"],
        full_attention_blocks=tuple(hf["fullatt_block_indexes"]),
        **shared,
    )
    return vision, float(hf["tokens_per_second"])


def _text(hf: dict[str, Any], where: str) -> tuple[dict[str, Any], tuple[int, ...]]:
    """The text fields as a Qwen2 ``config.json`` for ``llama``'s converter, and the M-RoPE sections."""
    text = dict(hf.get("text_config") or {key: value for key, value in hf.items() if key != "vision_config"})
    text = {**_TEXT, **text}
    rope = dict(text.pop("rope_parameters", None) or text.pop("rope_scaling", None) or {})
    sections = tuple(rope.pop("mrope_section", (16, 24, 24)))
    if rope.get("rope_type", rope.get("type")) in ("mrope", None):
        rope.pop("type", None)
        rope["rope_type"] = "default"
    rope.setdefault("rope_theta", text.pop("rope_theta", 1000000.0))
    text.update(model_type="qwen2", rope_parameters=rope)
    text["tie_word_embeddings"] = tied_head(hf, text_field_counts=True)
    return text, sections


def vlm_config_from_hf(hf: dict[str, Any], where: str) -> Qwen2VLConfig:
    """Convert a Hugging Face Qwen2-VL or Qwen2.5-VL ``config.json``."""
    model_type = hf["model_type"]
    vision, tokens_per_second = _vision(dict(hf.get("vision_config") or {}), model_type, where)
    text, sections = _text(hf, where)
    return Qwen2VLConfig(
        vision=vision,
        decoder=decoder_config_from_hf(text, f"{where}: text_config"),
        mrope_section=sections,
        image_token_id=hf.get("image_token_id", 151655),
        video_token_id=hf.get("video_token_id", 151656),
        vision_start_token_id=hf.get("vision_start_token_id", 151652),
        vision_end_token_id=hf.get("vision_end_token_id", 151653),
        tokens_per_second=tokens_per_second,
    )


def vision_rules(config: QwenVisionConfig, ours: str, theirs: str) -> list[Rule]:
    """The tower's key map: vlmkit's fused names from transformers' ``visual.*`` ones."""
    norms = ("weight",) if config.norm == "rms" else ("weight", "bias")
    mlp: dict[str, str | tuple[str, ...]] = (
        {"mlp.gate_up": ("mlp.gate_proj", "mlp.up_proj"), "mlp.down": "mlp.down_proj"}
        if config.mlp == "gated"
        else {"mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
    )
    blocks, layers = f"{ours}blocks", config.layers
    rules = [reshape(f"{ours}patch_embed.weight", f"{theirs}patch_embed.proj.weight")]
    rules += block_rules(blocks, f"{theirs}blocks", layers, {"norm1": "norm1", "norm2": "norm2"}, norms)
    rules += block_rules(blocks, f"{theirs}blocks", layers, {"attn.qkv": "attn.qkv", "attn.out": "attn.proj", **mlp})
    rules += [copy(f"{ours}merger.norm.{p}", f"{theirs}merger.ln_q.{p}") for p in norms]
    for p in ("weight", "bias"):
        rules += [
            copy(f"{ours}merger.fc1.{p}", f"{theirs}merger.mlp.0.{p}"),
            copy(f"{ours}merger.fc2.{p}", f"{theirs}merger.mlp.2.{p}"),
        ]
    return rules


def qwen2_vl_rules(config: Qwen2VLConfig, keys: Iterable[str], where: str) -> tuple[list[Rule], Callable[[str], bool]]:
    """The key map for this checkpoint's layout, and the predicate of source keys that may go unused."""
    keys = list(keys)
    vision = key_prefix(keys, "patch_embed.proj.weight", "vision tower", where)
    body = key_prefix(keys, "embed_tokens.weight", "language model", where)
    heads = [key for key in keys if key.endswith("lm_head.weight")]
    head = heads[0].removesuffix("weight") if heads else "lm_head."
    rules = [*vision_rules(config.vision, "vision.", vision), *decoder_rules(config.decoder, "decoder.", body, head)]
    return rules, ignored_key(config.decoder, head)


def hf_config(config: Qwen2VLConfig, text: dict[str, Any]) -> dict[str, Any]:
    """The transformers ``config.json`` of ``config`` (``vlm_config_from_hf``'s inverse), around ``text``, the decoder's
    fields as ``export.hf_decoder_config`` writes them; the caller checks that it reads back the same."""
    vision = config.vision
    shared = {
        "depth": vision.layers,
        "num_heads": vision.heads,
        "hidden_act": next(name for name, ours in HF_ACTIVATIONS.items() if ours == vision.act),
        "patch_size": vision.patch_size,
        "temporal_patch_size": vision.temporal_patch_size,
        "in_channels": vision.in_channels,
        "spatial_merge_size": vision.merge_size,
    }
    if vision.norm == "rms":
        model_type, architecture = "qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration"
        tower = {
            "hidden_size": vision.width,
            "out_hidden_size": vision.out_width,
            "intermediate_size": vision.mlp_dim,
            "window_size": vision.window_size,
            "fullatt_block_indexes": list(vision.full_attention_blocks),
            "tokens_per_second": _number(config.tokens_per_second),
        }
    else:
        model_type, architecture = "qwen2_vl", "Qwen2VLForConditionalGeneration"
        tower = {
            "embed_dim": vision.width,
            "hidden_size": vision.out_width,
            "mlp_ratio": vision.mlp_dim // vision.width,
        }
    text = {key: value for key, value in text.items() if key not in ("model_type", "attention_bias", "mlp_bias")}
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_section": list(config.mrope_section)}
    return {
        "model_type": model_type,
        "architectures": [architecture],
        "vision_config": {**shared, **tower},
        "text_config": text,
        "image_token_id": config.image_token_id,
        "video_token_id": config.video_token_id,
        "vision_start_token_id": config.vision_start_token_id,
        "vision_end_token_id": config.vision_end_token_id,
        "tie_word_embeddings": config.decoder.tie_embeddings,
    }


def conv_patch_weights(rules: list[Rule], config: QwenVisionConfig, state: dict[str, Any]) -> dict[str, Any]:
    """The tower's patch matrices of ``state`` as transformers' Conv3d weights (out, C, T, P, P): the ``reshape``
    rules of ``rules`` run backwards, which ``keymap.invert_rules`` cannot do without the shape."""
    shape = (config.in_channels, config.temporal_patch_size, config.patch_size, config.patch_size)
    weights = {}
    for rule in rules:
        if rule.op == "reshape":
            weight = state[rule.target]
            weights[rule.sources[0]] = weight.reshape(weight.shape[0], *shape).contiguous()
    return weights


def _number(value: float) -> int | float:
    """A whole number as an int: transformers' strict config fields (``tokens_per_second``) refuse 2.0."""
    return int(value) if float(value).is_integer() else value
