"""Top-level configs by architecture name: the ``"architecture"`` field of a saved ``config.json``."""

from __future__ import annotations

from pathlib import Path

from vlmkit.config.base import ConfigBase
from vlmkit.config.conse import ConSEConfig
from vlmkit.config.dit import DiTConfig
from vlmkit.config.encoders import DualEncoderConfig
from vlmkit.config.mae import MaeConfig
from vlmkit.config.mask_tokenizer import MaskTokenizerConfig
from vlmkit.config.qwen2_vl import Qwen2VLConfig
from vlmkit.config.vlm import DecoderConfig, VlmConfig
from vlmkit.errors import ConfigError
from vlmkit.files import read_json_object

ARCHITECTURES: dict[str, type[ConfigBase]] = {
    "dual_encoder": DualEncoderConfig,
    "decoder": DecoderConfig,
    "vlm": VlmConfig,
    "conse": ConSEConfig,
    "mask_tokenizer": MaskTokenizerConfig,
    "dit": DiTConfig,
    "mae": MaeConfig,
    "qwen2_vl": Qwen2VLConfig,
}


def config_from_json(path: str | Path) -> ConfigBase:
    """Read a vlmkit ``config.json`` and build the config of its ``"architecture"``."""
    path = Path(path)
    data = read_json_object(path)
    if "architecture" not in data:
        raise ConfigError(f"{path}: missing field 'architecture' (one of {sorted(ARCHITECTURES)})")
    data = dict(data)
    architecture = data.pop("architecture")
    data.pop("vlmkit_version", None)
    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise ConfigError(f"{path}: architecture {architecture!r} is not one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[architecture].from_dict(data, where=str(path))


def architecture_of(config: ConfigBase) -> str:
    for name, cls in ARCHITECTURES.items():
        if type(config) is cls:
            return name
    raise ConfigError(f"{type(config).__name__} is not a top-level model config")
