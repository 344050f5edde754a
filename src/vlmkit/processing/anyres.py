"""LLaVA-NeXT's "anyres" tiling: an image as a resized base view plus tiles of a grid chosen for its shape.

The geometry is shared by the preprocessing (which crops the tiles) and the model (which packs their
features and counts the image tokens a prompt must hold), so both read it from here. Facts taken from
transformers 5.24:

- ``select_best_resolution`` (``image_processing_utils.py``): among the ``image_grid_pinpoints``
  (height, width), the one that keeps most of the image's pixels once the image is scaled to fit
  (``int`` of each scaled side, capped at the original count), ties broken by fewest wasted pixels.
- ``get_patch_output_size`` (same file): the image is scaled to fit that resolution, the long side
  exactly and the other ``ceil``-ed (capped); ``_pad_for_patching`` (``image_processing_pil_llava_next.py``)
  pads it with zeros, centred, the odd pixel after; ``divide_to_patches`` cuts row-major tiles.
- The base view is the whole image squashed to the tile size, and comes first (``get_image_patches``).
- ``get_anyres_image_grid_shape`` and ``unpad_image`` (``modeling_llava_next.py``): tile features form
  a ``rows * grid`` by ``cols * grid`` map, from which the rows (or columns) that only saw padding are
  cut against the original aspect ratio; ``image_newline`` then ends every row. The processor's count
  (``processing_llava_next.py``, ``_get_unpadded_features``) is the same arithmetic, done here once.
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
from vlmkit.processing.image_splitting import SplitImagePreprocessor
from vlmkit.processing.images import DEFAULT_MAX_PIXELS, ImagePreprocessor, ImageSource, load_image
from vlmkit.processing.qwen2_vl import QwenImageProcessor, is_qwen_config

Pinpoints = tuple[tuple[int, int], ...]


def select_best_resolution(height: int, width: int, pinpoints: Pinpoints) -> tuple[int, int]:
    """The (height, width) of ``pinpoints`` that an image of this size fills best (see the module notes)."""
    best, most_kept, least_wasted = pinpoints[0], 0, math.inf
    for target_h, target_w in pinpoints:
        scale = min(target_w / width, target_h / height)
        kept = min(int(width * scale) * int(height * scale), width * height)
        wasted = target_w * target_h - kept
        if kept > most_kept or (kept == most_kept and wasted < least_wasted):
            best, most_kept, least_wasted = (target_h, target_w), kept, wasted
    return best


def fitted_size(height: int, width: int, target: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of the image scaled to fit ``target`` with its aspect ratio (before the padding)."""
    target_h, target_w = target
    scale_w, scale_h = target_w / width, target_h / height
    if scale_w < scale_h:
        return min(math.ceil(height * scale_w), target_h), target_w
    return target_h, min(math.ceil(width * scale_h), target_w)


def tile_grid(height: int, width: int, pinpoints: Pinpoints, tile: int) -> tuple[int, int]:
    """(rows, columns) of tiles an image of this size is cut into."""
    best_h, best_w = select_best_resolution(height, width, pinpoints)
    return best_h // tile, best_w // tile


def unpadded_span(height: int, width: int, cells_h: int, cells_w: int) -> tuple[slice, slice]:
    """Rows and columns of a ``cells_h`` x ``cells_w`` feature map that saw the image, not its padding."""
    if width / height > cells_w / cells_h:
        kept = int(round(height * (cells_w / width), 7))
        pad = (cells_h - kept) // 2
        return slice(pad, cells_h - pad), slice(0, cells_w)
    kept = int(round(width * (cells_h / height), 7))
    pad = (cells_w - kept) // 2
    return slice(0, cells_h), slice(pad, cells_w - pad)


def anyres_token_count(height: int, width: int, pinpoints: Pinpoints, tile: int, grid: int, base_tokens: int) -> int:
    """Image tokens of one image: the base view's ``base_tokens``, then each kept row of the packed tile
    map (``grid`` x ``grid`` tokens per tile) plus its newline."""
    rows, cols = tile_grid(height, width, pinpoints, tile)
    kept_rows, kept_cols = unpadded_span(height, width, rows * grid, cols * grid)
    count_h, count_w = kept_rows.stop - kept_rows.start, kept_cols.stop - kept_cols.start
    return base_tokens + count_h * (count_w + 1)


def expand_image_tokens(ids: Sequence[int], image_token_id: int, counts: Sequence[int]) -> list[int]:
    """``ids`` with the i-th ``image_token_id`` repeated ``counts[i]`` times (what LLaVA-NeXT's processor does
    to each ``<image>``)."""
    slots = [i for i, token in enumerate(ids) if token == image_token_id]
    if len(slots) != len(counts):
        raise InputError(f"the text holds {len(slots)} image tokens but {len(counts)} image(s) were given")
    out: list[int] = []
    start = 0
    for slot, count in zip(slots, counts, strict=True):
        out += [*ids[start:slot], *[image_token_id] * count]
        start = slot + 1
    return out + list(ids[start:])


def check_pinpoints(pinpoints: Any, tile: int, where: str) -> Pinpoints:
    """``pinpoints`` as (height, width) pairs, each side a positive multiple of ``tile``, or a ConfigError."""
    if not isinstance(pinpoints, Sequence) or isinstance(pinpoints, str) or not pinpoints:
        raise ConfigError(f"{where}: expected a non-empty list of [height, width], got {pinpoints!r}")
    pairs = []
    for pair in pinpoints:
        if not (isinstance(pair, Sequence) and len(pair) == 2 and all(isinstance(v, int) and v > 0 for v in pair)):
            raise ConfigError(f"{where}: expected [height, width] pairs of positive ints, got {pair!r}")
        if pair[0] % tile or pair[1] % tile:
            raise ConfigError(f"{where}: {list(pair)} is not a multiple of the {tile} px tile on both sides")
        pairs.append((int(pair[0]), int(pair[1])))
    return tuple(pairs)


@dataclass(frozen=True)
class AnyresPreprocessor:
    """LLaVA-NeXT's image processor: per image, the base view and the tiles, normalised, as
    ``pixel_values`` (B, 1 + most tiles, 3, tile, tile; images with fewer tiles zero-padded, as
    transformers' ``_pad_for_batching``) and ``image_sizes`` (B, 2) of (height, width).

    Attributes:
        base: the base view's transform, a squash to the square tile; its filter resizes for the tiles
            too, and its ``normalize`` (rescale, mean, std) applies to every crop.
        pinpoints: the candidate tiled resolutions, (height, width), multiples of the tile side.
    """

    base: ImagePreprocessor
    pinpoints: Pinpoints = ((336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008))

    def __post_init__(self) -> None:
        height, width = self.base.size
        if self.base.resize_mode != "squash" or height != width:
            raise ConfigError(f"anyres base view: expected a squash to a square tile, got {self.base.to_dict()}")
        object.__setattr__(self, "pinpoints", check_pinpoints(self.pinpoints, height, "image_grid_pinpoints"))

    @property
    def tile(self) -> int:
        return self.base.size[0]

    def __call__(
        self, images: Sequence[ImageSource], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
    ) -> dict[str, torch.Tensor]:
        """``pixel_values`` and ``image_sizes`` (the Hugging Face names) of the images."""
        if isinstance(images, (str, bytes, Image.Image)) or not isinstance(images, Sequence):
            raise InputError("AnyresPreprocessor expects a list of images; wrap a single image in a list")
        loaded = [load_image(source, max_pixels=max_pixels) for source in images]
        crops = [self.crops(image) for image in loaded]
        batch = torch.zeros(len(crops), max(len(c) for c in crops), 3, self.tile, self.tile)
        for i, views in enumerate(crops):
            batch[i, : len(views)] = self.base.normalize(views)
        sizes = torch.tensor([[image.height, image.width] for image in loaded], dtype=torch.long)
        return {"pixel_values": batch, "image_sizes": sizes}

    def crops(self, image: Image.Image) -> torch.Tensor:
        """The base view, then the tiles row by row, as uint8 (1 + tiles, 3, tile, tile)."""
        best_h, best_w = select_best_resolution(image.height, image.width, self.pinpoints)
        fit_h, fit_w = fitted_size(image.height, image.width, (best_h, best_w))
        fit = dataclasses.replace(self.base, size=(fit_h, fit_w)).resize_and_crop(image)
        canvas = Image.new("RGB", (best_w, best_h), (0, 0, 0))
        canvas.paste(fit, ((best_w - fit_w) // 2, (best_h - fit_h) // 2))
        tiled, side = np.asarray(canvas), self.tile
        views = [np.asarray(self.base.resize_and_crop(image))]
        views += [tiled[y : y + side, x : x + side] for y in range(0, best_h, side) for x in range(0, best_w, side)]
        return torch.from_numpy(np.stack(views)).permute(0, 3, 1, 2)

    # -------------------------------------------------------------------------------- configs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings for vlmkit's ``preprocessor.json`` (``image_grid_pinpoints`` marks the kind)."""
        return {"base": self.base.to_dict(), "image_grid_pinpoints": [list(pair) for pair in self.pinpoints]}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> AnyresPreprocessor:
        unknown = sorted(set(config) - {"base", "image_grid_pinpoints"})
        if unknown or not isinstance(config.get("base"), Mapping):
            raise ConfigError(
                f"anyres image preprocessor: expected 'base' and 'image_grid_pinpoints', got {sorted(config)}"
            )
        return cls(ImagePreprocessor.from_dict(config["base"]), config["image_grid_pinpoints"])

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any]) -> AnyresPreprocessor:
        """Read a ``LlavaNextImageProcessor`` config. The tiles are the centre crop, and each crop must pass
        the per-crop resize and crop unchanged (a shortest edge equal to the crop, as in every LLaVA-NeXT
        checkpoint); other settings are named, not approximated."""
        rest = {k: v for k, v in config.items() if k not in ("image_grid_pinpoints", "do_pad")}
        if not config.get("do_pad", True):
            raise ConfigError("preprocessor_config.json: 'do_pad' false is unsupported (batches pad the tiles)")
        fixed = ImagePreprocessor.from_hf_config(rest)
        height, width = fixed.size
        if height != width or fixed.shortest_edge is not None:
            raise ConfigError(
                f"preprocessor_config.json: {height}x{width} tiles resized to a shortest edge of "
                f"{fixed.shortest_edge} are unsupported (expected square tiles, the crop equal to the shortest edge)"
            )
        base = dataclasses.replace(fixed, resize_mode="squash", shortest_edge=None)
        return cls(base, config.get("image_grid_pinpoints", cls.pinpoints))


AnyImagePreprocessor = ImagePreprocessor | AnyresPreprocessor | SplitImagePreprocessor | QwenImageProcessor


def image_processor_from_dict(config: Mapping[str, Any]) -> AnyImagePreprocessor:
    """vlmkit's saved image settings: anyres when they carry ``image_grid_pinpoints``, Qwen2-VL's when they carry
    ``merge_size`` and ``temporal_patch_size``, Idefics3's splitting when they carry ``longest_edge``, else
    fixed-size."""
    if "image_grid_pinpoints" in config:
        return AnyresPreprocessor.from_dict(config)
    if is_qwen_config(config):
        return QwenImageProcessor.from_dict(config)
    if "longest_edge" in config:
        return SplitImagePreprocessor.from_dict(config)
    return ImagePreprocessor.from_dict(config)


def image_processor_from_hf(config: Mapping[str, Any]) -> AnyImagePreprocessor:
    """A Hugging Face image processor config: LLaVA-NeXT's (it has ``image_grid_pinpoints``), Idefics3's or
    SmolVLM's (``max_image_size``), Qwen2-VL's (``merge_size`` and ``temporal_patch_size``), or CLIP/SigLIP's."""
    if "image_grid_pinpoints" in config:
        return AnyresPreprocessor.from_hf_config(config)
    if "max_image_size" in config or "do_image_splitting" in config:
        return SplitImagePreprocessor.from_hf_config(config)
    if is_qwen_config(config):
        return QwenImageProcessor.from_hf_config(config)
    return ImagePreprocessor.from_hf_config(config)
