"""Which converter reads a Hugging Face directory, by its ``config.json`` ``model_type``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vlmkit.checkpoints import hf, llama, llava
from vlmkit.checkpoints.keymap import apply_rules
from vlmkit.checkpoints.weights import read_safetensors
from vlmkit.config import ConfigBase
from vlmkit.errors import CheckpointError
from vlmkit.models import build_model

SUPPORTED = (*hf.SUPPORTED_MODEL_TYPES, *llama.MODEL_TYPES, *llava.MODEL_TYPES)


def convert_hf(raw: dict[str, Any], directory: Path) -> tuple[ConfigBase, dict[str, torch.Tensor]]:
    """The vlmkit config and state dict of a Hugging Face checkpoint directory (``raw``: its config)."""
    where = str(directory)
    model_type = raw.get("model_type")
    if model_type not in SUPPORTED:
        raise CheckpointError(f"{where}: model_type {model_type!r} is not a supported family ({', '.join(SUPPORTED)})")
    tensors = read_safetensors(directory)
    config: ConfigBase
    if model_type in llama.MODEL_TYPES:
        config = llama.decoder_config_from_hf(raw, where)
        rules, ignore = llama.decoder_rules(config), llama.ignored_key(config)
    elif model_type in llava.MODEL_TYPES:
        config = llava.vlm_config_from_hf(raw, where)
        rules, ignore = llava.llava_rules(config, tensors, where)
    else:
        config = hf.dual_encoder_config_from_hf(raw, where)
        rules, ignore = hf.dual_encoder_rules(config), hf.is_ignored_hf_key
    expected = build_model(config, device="meta").state_dict()
    return config, apply_rules(rules, tensors, expected, where, ignore)
