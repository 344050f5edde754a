"""Hugging Face ``LlavaNextForConditionalGeneration`` checkpoints (LLaVA-NeXT / LLaVA-1.6): config and key map.

LLaVA-NeXT is LLaVA-1.5 (same tower, projector and decoder keys, read by ``llava``) plus "anyres" tiling,
which is config, not a new model: ``VlmConfig.image_grid_pinpoints`` and one ``image_newline`` vector
(``vlmkit.processing.anyres`` has the geometry). Facts from transformers 5.24
(``configuration_llava_next.py``, ``modeling_llava_next.py``):

- ``image_grid_pinpoints`` defaults to ``[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]``,
  ``image_token_index`` to 32000, ``vision_feature_layer`` to -2, the strategy to "default".
- Tiles are the tower's ``image_size`` (``get_anyres_image_grid_shape`` is called with it), and the packed
  map assumes ``grid x grid`` tokens per tile: "default" must drop a class token the tower has, and
  "full" needs a tower without one; transformers fails on the other two pairings, so they are refused.
- Only ``mm_patch_merge_type`` "spatial_unpad" exists in transformers; a single ``vision_feature_layer``
  is supported here (a list, which concatenates layers, is named and refused by ``llava``).

Both key layouts load, as for LLaVA: the hub's (``language_model.model.*``, ``image_newline``) and
transformers 5's in-memory one (``model.language_model.*``, ``model.image_newline``, ``lm_head``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from vlmkit.checkpoints.keymap import Rule, copy
from vlmkit.checkpoints.llava import llava_rules
from vlmkit.checkpoints.llava import vlm_config_from_hf as llava_config_from_hf
from vlmkit.config import VisionConfig, VlmConfig
from vlmkit.errors import CheckpointError, ConfigError
from vlmkit.processing.anyres import check_pinpoints

MODEL_TYPES = ("llava_next",)

DEFAULT_PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]


def vlm_config_from_hf(hf: dict[str, Any], where: str) -> VlmConfig:
    """Convert a Hugging Face LLaVA-NeXT ``config.json``."""
    config = llava_config_from_hf(hf, where, text_tie_counts=False)
    vision = config.vision
    assert isinstance(vision, VisionConfig)  # llava's converter builds a ViT
    strategy = hf.get("vision_feature_select_strategy", "default")
    if vision.class_token != (strategy == "default"):
        raise CheckpointError(
            f"{where}: vision_feature_select_strategy {strategy!r} with a tower "
            f"{'with' if vision.class_token else 'without'} a class token leaves tiles that are not a token grid "
            f"(expected {'default' if vision.class_token else 'full'})"
        )
    pinpoints = hf.get("image_grid_pinpoints") or DEFAULT_PINPOINTS
    try:
        pinpoints = check_pinpoints(pinpoints, vision.image_size, f"{where}: image_grid_pinpoints")
    except ConfigError as error:  # a checkpoint's config.json, so reported as the checkpoint's
        raise CheckpointError(str(error)) from None
    return dataclasses.replace(config, image_grid_pinpoints=pinpoints)


def llava_next_rules(config: VlmConfig, keys: Iterable[str], where: str) -> tuple[list[Rule], Callable[[str], bool]]:
    """LLaVA's key map for this layout, plus the newline vector (``image_newline`` or ``model.image_newline``)."""
    keys = list(keys)
    rules, ignore = llava_rules(config, keys, where)
    newlines = [key for key in keys if key.endswith("image_newline")]
    if len(newlines) != 1:
        raise CheckpointError(f"{where}: expected one image_newline tensor, found {newlines}")
    return [*rules, copy("image_newline", newlines[0])], ignore
