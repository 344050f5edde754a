"""Configs for every model part, as plain dataclasses with a JSON round trip.

Families (CLIP, SigLIP, ...) differ by the values of these fields, never by subclass: the shared
blocks in ``vlmkit.nn`` read them. ``config.json`` of a saved model is ``to_dict()`` of its top-level
config plus ``"architecture"``, and carries everything needed to rebuild the model.

Layout: ``base`` (the JSON round trip), ``encoders`` (ViT, text and EfficientNet towers, dual encoder), ``conse``,
``vlm`` (decoder, projector, VLM), ``presets`` (named model shapes) and ``registry`` (architecture
names, ``config_from_json``). Import from ``vlmkit.config`` itself.
"""

from vlmkit.config.base import Activation, ConfigBase
from vlmkit.config.conse import ConSEConfig
from vlmkit.config.encoders import DualEncoderConfig, EfficientNetConfig, ImagePoolConfig, TextConfig, VisionConfig
from vlmkit.config.presets import clip_config, siglip_config, smollm2_135m_config, tiny_decoder_config, tiny_vlm_config
from vlmkit.config.registry import ARCHITECTURES, architecture_of, config_from_json
from vlmkit.config.vlm import DecoderConfig, ProjectorConfig, VlmConfig

__all__ = [
    "ARCHITECTURES",
    "Activation",
    "ConSEConfig",
    "ConfigBase",
    "DecoderConfig",
    "DualEncoderConfig",
    "EfficientNetConfig",
    "ImagePoolConfig",
    "ProjectorConfig",
    "TextConfig",
    "VisionConfig",
    "VlmConfig",
    "architecture_of",
    "clip_config",
    "config_from_json",
    "siglip_config",
    "smollm2_135m_config",
    "tiny_decoder_config",
    "tiny_vlm_config",
]
