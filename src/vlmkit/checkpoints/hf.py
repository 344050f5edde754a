"""Which converter reads a Hugging Face directory, by its ``config.json`` ``model_type``.

Each family module (``clip_siglip``, ``llama``, ``llava``, ``llava_next``, ``paligemma``, ...) turns a config into a
vlmkit config and a key map; ``FAMILIES`` names them, one row each, so a new family is a new module and one row. This
module reads the weights, builds the vlmkit model once on the meta device, and fills it through the map, which checks
every tensor against that same model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vlmkit.checkpoints import clip_siglip, idefics3, llama, llava, llava_next, paligemma, qwen2_vl
from vlmkit.checkpoints.keymap import Rule, load_mapped
from vlmkit.checkpoints.weights import read_safetensors
from vlmkit.config import ConfigBase
from vlmkit.errors import CheckpointError
from vlmkit.models import build_model

KeyMap = tuple[list[Rule], Callable[[str], bool]]


@dataclass(frozen=True)
class Family:
    """One checkpoint family: its ``model_type`` names, its config converter, and its key map (from the vlmkit
    config, the checkpoint's tensor names and the directory, for messages)."""

    model_types: tuple[str, ...]
    config_from_hf: Callable[[dict[str, Any], str], ConfigBase]
    rules: Callable[[Any, Iterable[str], str], KeyMap]


FAMILIES: tuple[Family, ...] = (
    Family(
        clip_siglip.SUPPORTED_MODEL_TYPES,
        clip_siglip.dual_encoder_config_from_hf,
        lambda config, keys, where: (clip_siglip.dual_encoder_rules(config), clip_siglip.is_ignored_hf_key),
    ),
    Family(
        llama.MODEL_TYPES,
        llama.decoder_config_from_hf,
        lambda config, keys, where: (llama.decoder_rules(config), llama.ignored_key(config)),
    ),
    Family(llava.MODEL_TYPES, llava.vlm_config_from_hf, llava.llava_rules),
    Family(llava_next.MODEL_TYPES, llava_next.vlm_config_from_hf, llava_next.llava_next_rules),
    Family(paligemma.MODEL_TYPES, paligemma.vlm_config_from_hf, paligemma.paligemma_rules),
    Family(idefics3.MODEL_TYPES, idefics3.vlm_config_from_hf, idefics3.idefics3_rules),
    Family(qwen2_vl.MODEL_TYPES, qwen2_vl.vlm_config_from_hf, qwen2_vl.qwen2_vl_rules),
)
SUPPORTED = tuple(model_type for family in FAMILIES for model_type in family.model_types)


def convert_hf(raw: dict[str, Any], directory: Path, dtype: torch.dtype | None = None) -> tuple[ConfigBase, nn.Module]:
    """The vlmkit config and loaded model of a Hugging Face checkpoint directory (``raw``: its config),
    floating-point weights cast to ``dtype`` as they are read when it is given."""
    where = str(directory)
    model_type = raw.get("model_type")
    family = next((family for family in FAMILIES if model_type in family.model_types), None)
    if family is None:
        raise CheckpointError(f"{where}: model_type {model_type!r} is not a supported family ({', '.join(SUPPORTED)})")
    tensors = read_safetensors(directory, dtype)
    try:  # a field of the wrong kind (a list for a size, a string for a number) fails inside the converter
        config = family.config_from_hf(raw, where)
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError) as error:
        raise CheckpointError(f"{where}/config.json: unexpected field values for {model_type} ({error!r})") from None
    config = config.checked(f"{where}/config.json (as a vlmkit {type(config).__name__})")
    rules, ignore = family.rules(config, tensors, where)
    model = build_model(config, device="meta")
    load_mapped(model, rules, tensors, where, ignore)
    return config, model
