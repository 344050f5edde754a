"""Hugging Face image-processor configs in and out: ``preprocessor_config.json`` <-> ``ImagePreprocessor``.

Reading names every setting vlmkit does not support instead of ignoring it (a processor that pads, or
resizes without a crop to varying sizes, would compute something else); writing is the inverse, so an
exported model's processor gives the same pixels in transformers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from PIL import Image

from vlmkit.errors import ConfigError

if TYPE_CHECKING:
    from vlmkit.processing.images import ImagePreprocessor

_HF_RESAMPLE = {
    int(Image.Resampling.BICUBIC): "bicubic",
    int(Image.Resampling.BILINEAR): "bilinear",
    int(Image.Resampling.LANCZOS): "lanczos",
}

# Keys that describe how transformers runs, not what it computes; safe to ignore.
_HF_IGNORED = {
    "image_processor_type",
    "feature_extractor_type",
    "processor_class",
    "do_convert_rgb",
    "data_format",
    "input_data_format",
    "return_tensors",
    "device",
    "disable_grouping",
    "image_seq_length",
}
_HF_HANDLED = {
    "do_resize",
    "size",
    "resample",
    "do_center_crop",
    "crop_size",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "default_to_square",
    "do_pad",
    "pad_size",
}


def settings_from_hf(config: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - _HF_IGNORED - _HF_HANDLED)
    if unknown:
        raise ConfigError(f"preprocessor_config.json: unsupported setting {unknown[0]!r}")
    if not config.get("do_resize", True):
        raise ConfigError("preprocessor_config.json: 'do_resize' false is unsupported (batches need one size)")
    if config.get("do_pad"):
        raise ConfigError("preprocessor_config.json: 'do_pad' true is unsupported")

    settings: dict[str, Any] = {}
    resample = config.get("resample", int(Image.Resampling.BICUBIC))
    if resample not in _HF_RESAMPLE:
        raise ConfigError(
            f"preprocessor_config.json: 'resample' {resample!r} is unsupported (1=lanczos, 2=bilinear, 3=bicubic)"
        )
    settings["resample"] = _HF_RESAMPLE[resample]
    settings["rescale_factor"] = config.get("rescale_factor", 1 / 255) if config.get("do_rescale", True) else 1.0
    if config.get("do_normalize", True):
        settings["mean"] = _three(config, "image_mean")
        settings["std"] = _three(config, "image_std")
    else:
        settings["mean"], settings["std"] = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

    size = config.get("size")
    crop = config.get("crop_size") if config.get("do_center_crop", False) else None
    if isinstance(size, int):
        # Old configs store bare ints; transformers reads them as a shortest edge unless told square.
        size = {"height": size, "width": size} if config.get("default_to_square") else {"shortest_edge": size}
    if not isinstance(size, Mapping):
        raise ConfigError(f"preprocessor_config.json: 'size' must be an int or an object, got {size!r}")
    if set(size) == {"shortest_edge"}:
        if crop is None:
            raise ConfigError(
                "preprocessor_config.json: 'size' {'shortest_edge'} without 'do_center_crop' gives images of "
                "varying size; unsupported"
            )
        settings["resize_mode"] = "shortest_edge"
        settings["size"] = _height_width(crop, "crop_size")
        edge = size["shortest_edge"]
        settings["shortest_edge"] = None if edge == max(settings["size"]) else edge
    elif set(size) == {"height", "width"}:
        if crop is not None and _height_width(crop, "crop_size") != _height_width(size, "size"):
            raise ConfigError("preprocessor_config.json: 'crop_size' after a fixed-size resize is unsupported")
        settings["resize_mode"] = "squash"
        settings["size"] = _height_width(size, "size")
    else:
        raise ConfigError(
            f"preprocessor_config.json: 'size' keys {sorted(size)} unsupported "
            "(expected 'shortest_edge' or 'height' and 'width')"
        )
    return settings


def _three(config: Mapping[str, Any], key: str) -> tuple[float, float, float]:
    value = config.get(key)
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    if isinstance(value, Sequence) and len(value) == 3:
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    raise ConfigError(f"preprocessor_config.json: {key!r} must be 3 numbers, got {value!r}")


def _height_width(value: Any, key: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, Mapping) and set(value) == {"height", "width"}:
        return int(value["height"]), int(value["width"])
    raise ConfigError(f"preprocessor_config.json: {key!r} must be an int or {{'height', 'width'}}, got {value!r}")


def hf_config_of(processor: ImagePreprocessor) -> dict[str, Any]:
    """This preprocessing as a Hugging Face ``preprocessor_config.json`` (the inverse of ``from_hf_config``:
    CLIP's shortest edge + centre crop, or SigLIP's squash to a fixed size)."""
    height, width = processor.size
    crop = processor.resize_mode == "shortest_edge"
    config: dict[str, Any] = {
        "image_processor_type": "CLIPImageProcessor" if crop else "SiglipImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": processor.shortest_edge or max(processor.size)}
        if crop
        else {"height": height, "width": width},
        "resample": _hf_resample_code(processor.resample),
        "do_center_crop": crop,
        "do_rescale": True,
        "rescale_factor": processor.rescale_factor,
        "do_normalize": True,
        "image_mean": list(processor.mean),
        "image_std": list(processor.std),
    }
    if crop:
        config["crop_size"] = {"height": height, "width": width}
    return config


def _hf_resample_code(name: str) -> int:
    codes = {value: code for code, value in _HF_RESAMPLE.items()}
    if name not in codes:
        raise ConfigError(f"image preprocessor resample {name!r} has no Hugging Face equivalent ({sorted(codes)})")
    return codes[name]
