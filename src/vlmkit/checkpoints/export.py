"""vlmkit models written as Hugging Face directories that transformers loads with its own classes.

A decoder becomes a ``LlamaForCausalLM`` directory, a LLaVA-shaped vision-language model (a CLIP
ViT, the two-layer MLP projector, a Llama decoder) a ``LlavaForConditionalGeneration`` one, an image-splitting
one (Idefics3 / SmolVLM) an ``Idefics3ForConditionalGeneration`` one and a Qwen2-VL (2.5-VL) a
``Qwen2VLForConditionalGeneration`` (``Qwen2_5_VLForConditionalGeneration``) one, so a
model trained or fine-tuned in vlmkit goes anywhere transformers goes. There is one key map per family:
the weights are the load map (``llama.decoder_rules``, ``llava.llava_rules``) run backwards
(``keymap.invert_rules``). A config is written only if reading it back through the same converters
gives the same vlmkit config, so every field vlmkit cannot express in transformers' terms (a pixel
shuffle, a BERT decoder, a CNN tower) is named instead of silently changed.

The tokenizer goes with its ``tokenizer_config.json``; the prompt format goes as a Jinja chat template
(the checkpoint's own, or vlmkit's named template written as one); the image processor as a
``preprocessor_config.json`` plus the LLaVA processor's settings.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from vlmkit.checkpoints.hf_activations import HF_ACTIVATIONS
from vlmkit.checkpoints.idefics3 import PROJECTION, idefics3_rules
from vlmkit.checkpoints.idefics3 import vlm_config_from_hf as idefics3_config_from_hf
from vlmkit.checkpoints.keymap import Rule, invert_rules
from vlmkit.checkpoints.llama import decoder_config_from_hf, decoder_rules
from vlmkit.checkpoints.llava import llava_rules, vlm_config_from_hf
from vlmkit.checkpoints.qwen2_vl import conv_patch_weights, qwen2_vl_rules
from vlmkit.checkpoints.qwen2_vl import hf_config as hf_qwen2_vl_config
from vlmkit.checkpoints.qwen2_vl import vlm_config_from_hf as qwen2_vl_config_from_hf
from vlmkit.config import ConfigBase, DecoderConfig, VisionConfig, VlmConfig
from vlmkit.config.qwen2_vl import Qwen2VLConfig
from vlmkit.errors import ConfigError
from vlmkit.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from vlmkit.processing.chat import ChatTemplate, template_named
from vlmkit.processing.jinja_chat import JinjaChatTemplate
from vlmkit.processing.text import TextTokenizer

# vlmkit activation -> the Hugging Face name written for it (the first of HF_ACTIVATIONS' names)
_HF_NAME = {ours: theirs for theirs, ours in reversed(list(HF_ACTIVATIONS.items()))}
# The layout transformers writes (and the hub's llava-hf checkpoints use)
_LLAVA_KEYS = (
    "vision_tower.vision_model.embeddings.patch_embedding.weight",
    "language_model.model.embed_tokens.weight",
    "multi_modal_projector.linear_1.weight",
    "language_model.lm_head.weight",
)
_IDEFICS3_KEYS = (
    "model.vision_model.embeddings.patch_embedding.weight",
    "model.text_model.embed_tokens.weight",
    f"model.{PROJECTION}",
    "lm_head.weight",
)
_QWEN2_VL_KEYS = ("visual.patch_embed.proj.weight", "model.embed_tokens.weight", "lm_head.weight")


def hf_decoder_config(config: DecoderConfig) -> dict[str, Any]:
    """``LlamaConfig`` fields of a vlmkit decoder (checked by reading them back)."""
    rope: dict[str, Any] = {"rope_type": "default" if config.rope_scaling == "none" else config.rope_scaling}
    rope["rope_theta"] = config.rope_theta
    if config.rope_scaling != "none":
        rope["factor"] = config.rope_factor
    if config.rope_scaling == "llama3":
        rope.update(
            low_freq_factor=config.rope_low_freq_factor,
            high_freq_factor=config.rope_high_freq_factor,
            original_max_position_embeddings=config.rope_original_max_positions,
        )
    return {
        "model_type": "llama",
        "vocab_size": config.vocab_size,
        "hidden_size": config.width,
        "num_hidden_layers": config.layers,
        "num_attention_heads": config.heads,
        "num_key_value_heads": config.kv_heads,
        "head_dim": config.head_dim or config.width // config.heads,
        "intermediate_size": config.mlp_dim,
        "hidden_act": _HF_NAME.get(config.act, config.act),
        "rms_norm_eps": config.norm_eps,
        "max_position_embeddings": config.max_positions,
        "rope_parameters": rope,
        "attention_bias": config.qkv_bias and config.out_bias,
        "mlp_bias": config.mlp_bias,
        "tie_word_embeddings": config.tie_embeddings,
        "bos_token_id": config.bos_token_id,
        "eos_token_id": list(config.eos_token_ids) if len(config.eos_token_ids) > 1 else config.eos_token_ids[0],
        "pad_token_id": config.pad_token_id,
    }


def hf_vision_config(config: VisionConfig) -> dict[str, Any]:
    """``CLIPVisionConfig`` fields of a vlmkit ViT."""
    return {
        "model_type": "clip_vision_model",
        "image_size": config.image_size,
        "patch_size": config.patch_size,
        "num_channels": config.channels,
        "hidden_size": config.width,
        "num_hidden_layers": config.layers,
        "num_attention_heads": config.heads,
        "intermediate_size": config.mlp_dim,
        "hidden_act": _HF_NAME.get(config.act, config.act),
        "layer_norm_eps": config.norm_eps,
    }


def hf_llava_config(config: VlmConfig) -> dict[str, Any]:
    """``LlavaConfig`` fields of a vlmkit vision-language model."""
    if not isinstance(config.vision, VisionConfig):
        raise ConfigError(f"vision: a {type(config.vision).__name__} tower has no transformers LLaVA equivalent")
    projector = config.projector
    return {
        "model_type": "llava",
        "architectures": ["LlavaForConditionalGeneration"],
        "vision_config": hf_vision_config(config.vision),
        "text_config": hf_decoder_config(config.decoder),
        "image_token_index": config.image_token_id,
        "vision_feature_layer": projector.vision_layer,
        "vision_feature_select_strategy": "default" if projector.drop_class_token else "full",
        "projector_hidden_act": _HF_NAME.get(projector.act, projector.act),
        "multimodal_projector_bias": projector.bias,
        "tie_word_embeddings": config.decoder.tie_embeddings,
    }


def hf_idefics3_config(config: VlmConfig) -> dict[str, Any]:
    """``Idefics3Config`` fields of a vlmkit image-splitting model (the tower SigLIP-shaped, without a head)."""
    if not isinstance(config.vision, VisionConfig):
        raise ConfigError(f"vision: a {type(config.vision).__name__} tower has no transformers Idefics3 equivalent")
    return {
        "model_type": "idefics3",
        "architectures": ["Idefics3ForConditionalGeneration"],
        "vision_config": {**hf_vision_config(config.vision), "model_type": "idefics3_vision"},
        "text_config": hf_decoder_config(config.decoder),
        "image_token_id": config.image_token_id,
        "scale_factor": config.projector.pixel_shuffle,
        "tie_word_embeddings": config.decoder.tie_embeddings,
    }


def _differences(ours: Any, back: Any, prefix: str = "") -> list[str]:
    if dataclasses.is_dataclass(ours) and type(ours) is type(back):
        found = []
        for item in dataclasses.fields(ours):
            found += _differences(getattr(ours, item.name), getattr(back, item.name), f"{prefix}{item.name}.")
        return found
    return [] if ours == back else [f"{prefix.rstrip('.')} is {ours!r} (transformers would read {back!r})"]


def _check_round_trip(config: ConfigBase, back: ConfigBase, family: str) -> None:
    problems = _differences(config, back)
    if problems:
        raise ConfigError(f"cannot export as transformers {family}: " + "; ".join(problems[:4]))


def _split_sizes(decoder: DecoderConfig, prefix: str):
    """Row counts of the tensors a fused one was concatenated from: the decoder's q, k and v by its heads;
    every other fusion (a ViT's q/k/v, gate/up) of equal parts."""
    head_dim = decoder.head_dim or decoder.width // decoder.heads

    def sizes(rule: Rule, tensor: torch.Tensor) -> Sequence[int]:
        if rule.target.startswith(f"{prefix}blocks.") and ".attn.qkv." in rule.target:
            return [decoder.heads * head_dim, decoder.kv_heads * head_dim, decoder.kv_heads * head_dim]
        return [tensor.shape[0] // len(rule.sources)] * len(rule.sources)

    return sizes


def _vlmkit_jinja(template: ChatTemplate, bos: bool) -> str:
    """vlmkit's named prompt format as a Jinja chat template (images as ``<image>``; an answer ends in EOS)."""

    def part(fmt: str, text: str) -> str:
        before, _, after = fmt.partition("{text}")
        return f"{{{{ {before!r} }}}}{text}{{{{ {after!r} }}}}"

    content = (
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for item in message['content'] %}"
        "{% if item['type'] == 'image' %}{{ '<image>' }}{% else %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    )
    return (
        ("{{ bos_token }}" if bos else "")
        + "{% for message in messages %}{% if message['role'] == 'system' %}"
        + part(template.system, content)
        + "{% elif message['role'] == 'user' %}"
        + part(template.user, content)
        + "{% else %}"
        + f"{{{{ {template.assistant!r} }}}}"
        + part(template.answer, content)
        + "{{ eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}"
        + f"{{{{ {template.assistant!r} }}}}{{% endif %}}"
    )


def _token(tokenizer: TextTokenizer, token_id: int | None) -> str | None:
    return None if token_id is None else tokenizer.tokenizer.id_to_token(token_id)


def _write_tokenizer(model: nn.Module, config: DecoderConfig, named: str, out: Path) -> None:
    tokenizer: TextTokenizer | None = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return
    tokenizer.save(out / "tokenizer.json")
    settings: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": tokenizer.max_length,
        "bos_token": _token(tokenizer, config.bos_token_id),
        "eos_token": _token(tokenizer, config.eos_token_ids[0]),
        "pad_token": _token(tokenizer, tokenizer.pad_id),
        "add_bos_token": tokenizer.bos_id is not None,
        "add_eos_token": False,
    }
    jinja: JinjaChatTemplate | None = getattr(model, "jinja_template", None)
    source = jinja.source if jinja is not None else _vlmkit_jinja(template_named(named), tokenizer.bos_id is not None)
    atomic_write_json(out / "tokenizer_config.json", {k: v for k, v in settings.items() if v is not None})
    atomic_write_text(out / "chat_template.jinja", source)


def export_hf(model: nn.Module, directory: str | os.PathLike[str]) -> Path:
    """Write ``model`` as a transformers directory (``config.json`` last, each file atomically)."""
    config = model.config
    out = Path(directory)
    if isinstance(config, VlmConfig) and config.image_splitting:
        hf = hf_idefics3_config(config)
        back = idefics3_config_from_hf(hf, "export")
        _check_round_trip(config, dataclasses.replace(back, chat_template=config.chat_template), "Idefics3")
        rules, _ = idefics3_rules(config, _IDEFICS3_KEYS, "export")
        decoder, prefix, named = config.decoder, "decoder.", config.chat_template
    elif isinstance(config, VlmConfig):
        hf = hf_llava_config(config)
        back = vlm_config_from_hf(hf, "export")
        _check_round_trip(config, dataclasses.replace(back, chat_template=config.chat_template), "LLaVA")
        rules, _ = llava_rules(config, _LLAVA_KEYS, "export")
        decoder, prefix, named = config.decoder, "decoder.", config.chat_template
    elif isinstance(config, Qwen2VLConfig):
        hf = hf_qwen2_vl_config(config, hf_decoder_config(config.decoder))
        back = qwen2_vl_config_from_hf(hf, "export")
        _check_round_trip(config, dataclasses.replace(back, chat_template=config.chat_template), "Qwen2-VL")
        rules, _ = qwen2_vl_rules(config, _QWEN2_VL_KEYS, "export")
        decoder, prefix, named = config.decoder, "decoder.", "vlmkit"
    elif isinstance(config, DecoderConfig):
        hf = {"architectures": ["LlamaForCausalLM"], **hf_decoder_config(config)}
        _check_round_trip(config, decoder_config_from_hf(hf, "export"), "Llama")
        rules, decoder, prefix, named = decoder_rules(config), config, "", "vlmkit"
    else:
        raise ConfigError(
            f"a {type(model).__name__} cannot be exported as transformers (decoders, LLaVA-shaped VLMs, Qwen2-VL)"
        )
    state = {key: value.detach().to("cpu") for key, value in model.state_dict().items()}
    tensors = invert_rules([r for r in rules if r.op != "reshape"], state, _split_sizes(decoder, prefix))
    if isinstance(config, Qwen2VLConfig):
        tensors.update(conv_patch_weights(rules, config.vision, state))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "model.safetensors", safetensors_bytes(tensors, metadata={"format": "pt"}))
    _write_tokenizer(model, decoder, named, out)
    processor = getattr(model, "image_processor", None)
    if isinstance(config, Qwen2VLConfig) and processor is not None:
        atomic_write_json(out / "preprocessor_config.json", processor.to_hf_config())
    if isinstance(config, VlmConfig) and processor is not None:
        atomic_write_json(out / "preprocessor_config.json", processor.to_hf_config())
        if config.image_splitting:
            processor_settings = {"processor_class": "Idefics3Processor", "image_seq_len": config.tokens_per_image}
        else:
            processor_settings = {
                "processor_class": "LlavaProcessor",
                "patch_size": config.vision.patch_size,
                "vision_feature_select_strategy": hf["vision_feature_select_strategy"],
                "num_additional_image_tokens": int(config.vision.class_token),
                "image_token": _token(model.tokenizer, config.image_token_id) if model.tokenizer else "<image>",
            }
        atomic_write_json(out / "processor_config.json", processor_settings)
    atomic_write_json(out / "config.json", hf)
    return out
