"""Qwen2-VL's image and video processing: dynamic resolution, normalised, cut into flattened patches.

Facts from transformers 5.24 (``image_processing_pil_qwen2_vl.py``, ``video_processing_qwen2_vl.py``,
``processing_qwen2_vl.py``):

- ``smart_resize``: each side rounded to a multiple of ``factor = patch_size * merge_size`` (28); if the area
  passes ``max_pixels`` both sides are scaled by ``sqrt(h * w / max_pixels)`` and floored to multiples, if it is
  under ``min_pixels`` scaled up and ceiled; aspect ratios over 200 are refused. Images resize bicubic.
- A picture is a video of one frame; a video's frames are padded to a multiple of ``temporal_patch_size`` by
  repeating the last. The grid is ``(t, h, w) = (frames / temporal, height / patch, width / patch)`` and each row
  of ``pixel_values`` is one patch's (C, temporal, patch, patch) values; rows go merge block by merge block
  (``merge x merge`` patches each), blocks row-major, frame patch by frame patch.
- The prompt holds ``<|vision_start|><|image_pad|><|vision_end|>`` per image; the processor repeats the pad
  ``t * h * w / merge^2`` times (videos alike with ``<|video_pad|>``).
- Videos default to other pixel bounds (128 * 28 * 28 to 768 * 28 * 28 per frame), but a checkpoint without a
  video processor config of its own has its video processor read ``preprocessor_config.json``: the image bounds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.images import CLIP_MEAN, CLIP_STD, DEFAULT_MAX_PIXELS, ImageSource, load_image

Frames = Sequence[ImageSource | np.ndarray] | np.ndarray


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """(height, width) as multiples of ``factor`` with the area within [``min_pixels``, ``max_pixels``]."""
    if max(height, width) / min(height, width) > 200:
        raise InputError(f"an image of {width}x{height} has an aspect ratio over 200, which Qwen2-VL refuses")
    h_bar, w_bar = round(height / factor) * factor, round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar, w_bar = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class QwenImageProcessor:
    """Images and videos -> ``pixel_values`` (+ ``image_grid_thw``) and ``pixel_values_videos`` (+ ``video_grid_thw``),
    the Hugging Face names, so the outputs go to ``Qwen2VLModel`` as they are."""

    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    video_min_pixels: int = 128 * 28 * 28
    video_max_pixels: int = 768 * 28 * 28
    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    rescale_factor: float = 1 / 255
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            value = getattr(self, name)
            if not isinstance(value, Sequence) or len(value) != 3:
                raise ConfigError(f"qwen2_vl image processor: {name} must be 3 numbers, got {value!r}")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        for name in ("min_pixels", "max_pixels", "video_min_pixels", "video_max_pixels", "patch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ConfigError(
                    f"qwen2_vl image processor: {name} must be a positive int, got {getattr(self, name)!r}"
                )
        if not 0 < self.min_pixels <= self.max_pixels or self.video_min_pixels > self.video_max_pixels:
            raise ConfigError("qwen2_vl image processor: min_pixels must not exceed max_pixels")
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"qwen2_vl image processor: std must be positive, got {list(self.std)}")

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    def grid(self, height: int, width: int, frames: int = 1, video: bool = False) -> tuple[int, int, int]:
        """The (t, h, w) patch grid of an image (or video) of this size, as ``image_grid_thw`` gives it."""
        bounds = (self.video_min_pixels, self.video_max_pixels) if video else (self.min_pixels, self.max_pixels)
        new_h, new_w = smart_resize(height, width, self.factor, *bounds)
        return -(-frames // self.temporal_patch_size), new_h // self.patch_size, new_w // self.patch_size

    def tokens(self, grid: Sequence[int]) -> int:
        """Pad tokens of one image or video of ``grid`` (t, h, w)."""
        return int(np.prod(grid)) // self.merge_size**2

    def __call__(
        self, images: Sequence[ImageSource], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
    ) -> dict[str, torch.Tensor]:
        """``pixel_values`` (patches, C * temporal * patch^2) and ``image_grid_thw`` (N, 3) of the images."""
        if isinstance(images, (str, bytes, Image.Image)) or not isinstance(images, Sequence):
            raise InputError("QwenImageProcessor expects a list of images; wrap a single image in a list")
        pieces = [self._patches([load_image(source, max_pixels=max_pixels)], video=False) for source in images]
        return {
            "pixel_values": torch.cat([p for p, _ in pieces]),
            "image_grid_thw": torch.tensor([g for _, g in pieces], dtype=torch.long),
        }

    def videos(self, videos: Sequence[Frames]) -> dict[str, torch.Tensor]:
        """``pixel_values_videos`` and ``video_grid_thw`` of videos given as their (already sampled) frames: images,
        or uint8 arrays (frames, height, width, 3)."""
        pieces = []
        for frames in videos:
            if len(frames) == 0:
                raise InputError("a video needs at least one frame")
            pieces.append(self._patches([_frame(f) for f in frames], video=True))
        return {
            "pixel_values_videos": torch.cat([p for p, _ in pieces]),
            "video_grid_thw": torch.tensor([g for _, g in pieces], dtype=torch.long),
        }

    def _patches(self, frames: list[Image.Image], video: bool) -> tuple[torch.Tensor, tuple[int, int, int]]:
        first = frames[0]
        if any(f.size != first.size for f in frames):
            raise InputError("a video's frames must all have the same size")
        _, grid_h, grid_w = self.grid(first.height, first.width, len(frames), video)
        size = (grid_w * self.patch_size, grid_h * self.patch_size)
        pixels = np.stack(
            [np.asarray(f if f.size == size else f.resize(size, Image.Resampling.BICUBIC)) for f in frames]
        )
        values = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() * self.rescale_factor
        values = (values - torch.tensor(self.mean).view(1, 3, 1, 1)) / torch.tensor(self.std).view(1, 3, 1, 1)
        return patchify(values, self.patch_size, self.merge_size, self.temporal_patch_size)

    # -------------------------------------------------------------------------------- prompts

    def expand(
        self,
        ids: Sequence[int],
        image_token_id: int,
        image_grid_thw: torch.Tensor | None = None,
        video_token_id: int | None = None,
        video_grid_thw: torch.Tensor | None = None,
    ) -> list[int]:
        """``ids`` with each image (video) pad token repeated as many times as its grid has merged tokens."""
        from vlmkit.processing.anyres import expand_image_tokens  # anyres dispatches to this module

        out = expand_image_tokens(ids, image_token_id, [self.tokens(g) for g in _rows(image_grid_thw)])
        if video_token_id is None:
            return out
        return expand_image_tokens(out, video_token_id, [self.tokens(g) for g in _rows(video_grid_thw)])

    # -------------------------------------------------------------------------------- configs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings for vlmkit's ``preprocessor.json`` (``merge_size`` marks the kind)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_hf_config(self) -> dict[str, Any]:
        """The ``preprocessor_config.json`` transformers' ``Qwen2VLImageProcessor`` reads (``from_hf_config``'s
        inverse). Its video processor reads the same file, so video bounds other than the image ones are refused."""
        if (self.video_min_pixels, self.video_max_pixels) != (self.min_pixels, self.max_pixels):
            raise ConfigError(
                "image processor: video pixel bounds other than the image ones have no place in a "
                "preprocessor_config.json (transformers' video processor reads the image bounds from it)"
            )
        return {
            "image_processor_type": "Qwen2VLImageProcessor",
            "processor_class": "Qwen2VLProcessor",
            "do_resize": True,
            "do_rescale": True,
            "do_normalize": True,
            "do_convert_rgb": True,
            "resample": 3,
            "size": {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels},
            "patch_size": self.patch_size,
            "temporal_patch_size": self.temporal_patch_size,
            "merge_size": self.merge_size,
            "rescale_factor": self.rescale_factor,
            "image_mean": list(self.mean),
            "image_std": list(self.std),
        }

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> QwenImageProcessor:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(f"qwen2_vl image processor: unknown field {unknown[0]!r} (known: {sorted(known)})")
        return cls(**config)

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any]) -> QwenImageProcessor:
        """Read a ``Qwen2VLImageProcessor`` ``preprocessor_config.json``; a setting vlmkit does not support is named.

        Videos get the same pixel bounds: transformers' video processor reads this file too when a checkpoint has
        no video processor config of its own (``video_processing_utils``; a separate one is not read here)."""
        unknown = sorted(set(config) - _HF_HANDLED - _HF_IGNORED)
        if unknown:
            raise ConfigError(f"preprocessor_config.json: unsupported setting {unknown[0]!r} for Qwen2-VL")
        for key, expected in (("do_resize", True), ("do_rescale", True), ("do_normalize", True), ("resample", 3)):
            if config.get(key, expected) != expected:
                raise ConfigError(
                    f"preprocessor_config.json: {key!r} {config[key]!r} is unsupported (expected {expected!r})"
                )
        size = dict(config.get("size") or {})
        low = config.get("min_pixels", size.get("shortest_edge", cls.min_pixels))
        high = config.get("max_pixels", size.get("longest_edge", cls.max_pixels))
        return cls(
            min_pixels=low,
            max_pixels=high,
            video_min_pixels=low,
            video_max_pixels=high,
            patch_size=config.get("patch_size", cls.patch_size),
            temporal_patch_size=config.get("temporal_patch_size", cls.temporal_patch_size),
            merge_size=config.get("merge_size", cls.merge_size),
            rescale_factor=config.get("rescale_factor", cls.rescale_factor),
            mean=config.get("image_mean", CLIP_MEAN),
            std=config.get("image_std", CLIP_STD),
        )


_HF_HANDLED = {
    "size",
    "min_pixels",
    "max_pixels",
    "patch_size",
    "temporal_patch_size",
    "merge_size",
    "rescale_factor",
    "image_mean",
    "image_std",
    "do_resize",
    "do_rescale",
    "do_normalize",
    "resample",
}
_HF_IGNORED = {"image_processor_type", "processor_class", "do_convert_rgb", "data_format", "input_data_format"}
_HF_IGNORED |= {"return_tensors", "device", "disable_grouping"}


def is_qwen_config(config: Mapping[str, Any]) -> bool:
    """Whether an image processor config (Hugging Face's or vlmkit's) is Qwen2-VL's."""
    return "merge_size" in config and "temporal_patch_size" in config


def patchify(frames: torch.Tensor, patch: int, merge: int, temporal: int) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Frames (T, C, H, W) -> rows (t * h * w, C * temporal * patch^2) in merge-block order, and the grid."""
    if pad := -frames.shape[0] % temporal:
        frames = torch.cat([frames, frames[-1:].expand(pad, -1, -1, -1)])
    count, channels, height, width = frames.shape
    t, h, w = count // temporal, height // patch, width // patch
    blocks = frames.reshape(t, temporal, channels, h // merge, merge, patch, w // merge, merge, patch)
    rows = blocks.permute(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(t * h * w, channels * temporal * patch * patch)
    return rows.contiguous(), (t, h, w)


def _frame(frame: ImageSource | np.ndarray) -> Image.Image:
    if isinstance(frame, np.ndarray):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
            raise InputError(f"a video frame array must be uint8 (height, width, 3), got {frame.dtype} {frame.shape}")
        return Image.fromarray(frame)
    return load_image(frame)


def _rows(grid_thw: torch.Tensor | None) -> list[list[int]]:
    return [] if grid_thw is None else grid_thw.tolist()
