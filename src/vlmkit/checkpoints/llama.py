"""Hugging Face causal LMs of the Llama family (Llama, SmolLM2, Mistral, Qwen2): config and key map.

The families differ only in field values: Qwen2 has biases on q/k/v (not on o), Mistral may declare
a sliding window, and rotary settings come either as ``rope_theta`` + ``rope_scaling`` (older
files) or as one ``rope_parameters`` object (transformers 5). q/k/v weights are concatenated into
vlmkit's fused ``qkv`` and gate/up into the fused ``gate_up``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vlmkit.checkpoints.hf_activations import HF_ACTIVATIONS
from vlmkit.checkpoints.keymap import Rule, concat, copy
from vlmkit.config import DecoderConfig
from vlmkit.errors import CheckpointError

MODEL_TYPES = ("llama", "mistral", "qwen2")
SUPPORTED_ROPE = ("default", "linear", "llama3")


def _rope(hf: dict[str, Any], where: str) -> dict[str, Any]:
    """vlmkit's rope fields from either the old or the transformers-5 layout."""
    params = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
    theta = params.get("rope_theta", hf.get("rope_theta", 10000.0))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind not in SUPPORTED_ROPE:
        raise CheckpointError(f"{where}: rope type {kind!r} is not supported (supported: {', '.join(SUPPORTED_ROPE)})")
    fields: dict[str, Any] = {"rope_theta": float(theta)}
    if kind == "default":
        return fields
    fields.update(rope_scaling=kind, rope_factor=float(params["factor"]))
    if kind == "llama3":
        fields.update(
            rope_low_freq_factor=float(params["low_freq_factor"]),
            rope_high_freq_factor=float(params["high_freq_factor"]),
            rope_original_max_positions=int(
                params.get("original_max_position_embeddings", hf.get("max_position_embeddings", 8192))
            ),
        )
    return fields


def _ids(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def decoder_config_from_hf(hf: dict[str, Any], where: str) -> DecoderConfig:
    """Convert a Hugging Face Llama / Mistral / Qwen2 ``config.json`` (or a LLaVA ``text_config``)."""
    model_type = hf.get("model_type", "llama")
    if model_type not in MODEL_TYPES:
        raise CheckpointError(f"{where}: model_type {model_type!r} is not one of {', '.join(MODEL_TYPES)}")
    act = hf.get("hidden_act", "silu")
    if act not in HF_ACTIVATIONS:
        raise CheckpointError(f"{where}: hidden_act {act!r} is not supported ({sorted(HF_ACTIVATIONS)})")
    width = hf.get("hidden_size", 4096)
    heads = hf.get("num_attention_heads", 32)
    max_positions = hf.get("max_position_embeddings", 2048)
    window = hf.get("sliding_window") if hf.get("use_sliding_window", model_type == "mistral") else None
    if window:  # within the window, sliding-window attention is full attention
        max_positions = min(max_positions, window)
    qwen = model_type == "qwen2"
    bias = bool(hf.get("attention_bias", False))
    eos = _ids(hf.get("eos_token_id", 2)) or (0,)
    pad = hf.get("pad_token_id")
    return DecoderConfig(
        vocab_size=hf.get("vocab_size", 32000),
        width=width,
        layers=hf.get("num_hidden_layers", 32),
        heads=heads,
        kv_heads=hf.get("num_key_value_heads") or heads,
        head_dim=hf.get("head_dim") if hf.get("head_dim") not in (None, width // heads) else None,
        mlp_dim=hf.get("intermediate_size", 11008),
        act=HF_ACTIVATIONS[act],
        norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        max_positions=max_positions,
        qkv_bias=qwen or bias,
        out_bias=bias and not qwen,
        mlp_bias=bool(hf.get("mlp_bias", False)),
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        bos_token_id=hf.get("bos_token_id"),
        eos_token_ids=eos,
        pad_token_id=pad if isinstance(pad, int) else eos[0],
        **_rope(hf, where),
    )


def _params(bias: bool) -> tuple[str, ...]:
    return ("weight", "bias") if bias else ("weight",)


def decoder_rules(config: DecoderConfig, ours: str = "", body: str = "model.", head: str = "lm_head.") -> list[Rule]:
    """The key map from a ``LlamaForCausalLM`` state dict (``body`` = its ``LlamaModel`` prefix)."""
    rules = [
        copy(f"{ours}embed.weight", f"{body}embed_tokens.weight"),
        copy(f"{ours}norm.weight", f"{body}norm.weight"),
    ]
    if not config.tie_embeddings:
        rules.append(copy(f"{ours}lm_head.weight", f"{head}weight"))
    for i in range(config.layers):
        o, t = f"{ours}blocks.{i}", f"{body}layers.{i}"
        rules += [
            copy(f"{o}.norm1.weight", f"{t}.input_layernorm.weight"),
            copy(f"{o}.norm2.weight", f"{t}.post_attention_layernorm.weight"),
        ]
        for p in _params(config.qkv_bias):
            rules.append(concat(f"{o}.attn.qkv.{p}", *(f"{t}.self_attn.{n}_proj.{p}" for n in "qkv")))
        for p in _params(config.out_bias):
            rules.append(copy(f"{o}.attn.out.{p}", f"{t}.self_attn.o_proj.{p}"))
        for p in _params(config.mlp_bias):
            rules += [
                concat(f"{o}.mlp.gate_up.{p}", f"{t}.mlp.gate_proj.{p}", f"{t}.mlp.up_proj.{p}"),
                copy(f"{o}.mlp.down.{p}", f"{t}.mlp.down_proj.{p}"),
            ]
    return rules


def ignored_key(config: DecoderConfig, head: str = "lm_head.") -> Callable[[str], bool]:
    """Source keys that may be present without being used: rotary buffers, and a tied head's copy."""

    def ignore(key: str) -> bool:
        return key.endswith("rotary_emb.inv_freq") or (config.tie_embeddings and key == f"{head}weight")

    return ignore
