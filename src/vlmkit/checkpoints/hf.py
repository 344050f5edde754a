"""Which converter reads a Hugging Face directory, by its ``config.json`` ``model_type``.

The family modules (``clip_siglip``, ``llama``, ``llava``, ``llava_next``, ``paligemma``) turn a config into a
vlmkit config and a key map; this one reads the weights, builds the vlmkit model once on the meta device, and fills it
through the map, which checks every tensor against that same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from vlmkit.checkpoints.clip_siglip import SUPPORTED_MODEL_TYPES as CLIP_SIGLIP_TYPES
from vlmkit.checkpoints.clip_siglip import dual_encoder_config_from_hf, dual_encoder_rules, is_ignored_hf_key
from vlmkit.checkpoints.keymap import load_mapped
from vlmkit.checkpoints.llama import MODEL_TYPES as LLAMA_TYPES
from vlmkit.checkpoints.llama import decoder_config_from_hf, decoder_rules, ignored_key
from vlmkit.checkpoints.llava import MODEL_TYPES as LLAVA_TYPES
from vlmkit.checkpoints.llava import llava_rules, vlm_config_from_hf
from vlmkit.checkpoints.llava_next import MODEL_TYPES as LLAVA_NEXT_TYPES
from vlmkit.checkpoints.llava_next import llava_next_rules
from vlmkit.checkpoints.llava_next import vlm_config_from_hf as llava_next_config_from_hf
from vlmkit.checkpoints.paligemma import MODEL_TYPES as PALIGEMMA_TYPES
from vlmkit.checkpoints.paligemma import paligemma_rules
from vlmkit.checkpoints.paligemma import vlm_config_from_hf as paligemma_config_from_hf
from vlmkit.checkpoints.weights import read_safetensors
from vlmkit.config import ConfigBase
from vlmkit.errors import CheckpointError
from vlmkit.models import build_model

SUPPORTED = (*CLIP_SIGLIP_TYPES, *LLAMA_TYPES, *LLAVA_TYPES, *LLAVA_NEXT_TYPES, *PALIGEMMA_TYPES)


def convert_hf(raw: dict[str, Any], directory: Path, dtype: torch.dtype | None = None) -> tuple[ConfigBase, nn.Module]:
    """The vlmkit config and loaded model of a Hugging Face checkpoint directory (``raw``: its config),
    floating-point weights cast to ``dtype`` as they are read when it is given."""
    where = str(directory)
    model_type = raw.get("model_type")
    if model_type not in SUPPORTED:
        raise CheckpointError(f"{where}: model_type {model_type!r} is not a supported family ({', '.join(SUPPORTED)})")
    tensors = read_safetensors(directory, dtype)
    config: ConfigBase
    try:  # a field of the wrong kind (a list for a size, a string for a number) fails inside the converter
        if model_type in LLAMA_TYPES:
            config = decoder_config_from_hf(raw, where)
        elif model_type in LLAVA_TYPES:
            config = vlm_config_from_hf(raw, where)
        elif model_type in LLAVA_NEXT_TYPES:
            config = llava_next_config_from_hf(raw, where)
        elif model_type in PALIGEMMA_TYPES:
            config = paligemma_config_from_hf(raw, where)
        else:
            config = dual_encoder_config_from_hf(raw, where)
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError) as error:
        raise CheckpointError(f"{where}/config.json: unexpected field values for {model_type} ({error!r})") from None
    config = config.checked(f"{where}/config.json (as a vlmkit {type(config).__name__})")
    if model_type in LLAMA_TYPES:
        rules, ignore = decoder_rules(config), ignored_key(config)
    elif model_type in LLAVA_TYPES:
        rules, ignore = llava_rules(config, tensors, where)
    elif model_type in LLAVA_NEXT_TYPES:
        rules, ignore = llava_next_rules(config, tensors, where)
    elif model_type in PALIGEMMA_TYPES:
        rules, ignore = paligemma_rules(config, tensors, where)
    else:
        rules, ignore = dual_encoder_rules(config), is_ignored_hf_key
    model = build_model(config, device="meta")
    load_mapped(model, rules, tensors, where, ignore)
    return config, model
