"""Idefics3 / SmolVLM image splitting: an image as tower-sized tiles plus a global view, and its prompt layout.

The preprocessing (which cuts the crops) and the chat encoders (which lay out each image's tokens between
marker tokens) share the geometry here. Facts from transformers 5.24 (``image_processing_pil_idefics3.py``,
identical for SmolVLM; ``processing_idefics3.py``; ``processing_smolvlm.get_image_prompt_string``):

- every image is first resized so its longest edge is ``size["longest_edge"]`` (up or down; the other side
  ``int`` of the scaled length, made even), then kept within 4096 px a side;
- with splitting, it is resized again to whole tiles of ``max_image_size["longest_edge"]`` px (the long
  side rounded up to a multiple, the short side from ``int`` of the aspect ratio, rounded up too) and cut
  row by row into tiles; the global view is that image squashed to one tile, and comes last. An image that
  is a single tile is not split (rows = cols = 0). Without splitting, the image is squashed to one tile;
- every resize is Pillow's on the 8-bit image (LANCZOS by default); rescale and normalise follow in float;
- images with fewer crops are padded with all-zero crops, and ``pixel_attention_mask`` is 1 on real pixels;
- an image's prompt is, per tile, ``<fake_token_around_image><row_r_col_c>`` and ``image_seq_len``
  ``<image>``, a line break after each row of tiles, then ``\\n<fake_token_around_image><global-img>``, the
  global view's ``<image>`` tokens and a closing ``<fake_token_around_image>``; an unsplit image is only
  that last part, without the leading line break.
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
from vlmkit.processing.hf_images import hf_config_of
from vlmkit.processing.images import DEFAULT_MAX_PIXELS, ImagePreprocessor, ImageSource, load_image
from vlmkit.processing.text import TextTokenizer

MAX_SIDE = 4096
FAKE, IMAGE, GLOBAL = "<fake_token_around_image>", "<image>", "<global-img>"


def longest_edge_size(height: int, width: int, longest: int) -> tuple[int, int]:
    """(height, width) after the first resize: the longest edge to ``longest``, then within ``MAX_SIDE``."""
    ratio = width / height
    if width >= height:
        width, height = longest, int(longest / ratio)
        height += height % 2
    else:
        height, width = longest, int(longest * ratio)
        width += width % 2
    height, width = max(height, 1), max(width, 1)
    ratio = width / height
    if width >= height and width > MAX_SIDE:
        width, height = MAX_SIDE, int(MAX_SIDE / ratio)
    elif height > width and height > MAX_SIDE:
        height, width = MAX_SIDE, int(MAX_SIDE * ratio)
    return max(height, 1), max(width, 1)


def whole_tiles_size(height: int, width: int, tile: int) -> tuple[int, int]:
    """(height, width) in whole ``tile`` px tiles that the splitting resize gives an image of this size."""
    ratio = width / height
    if width >= height:
        width = math.ceil(width / tile) * tile
        height = math.ceil(int(width / ratio) / tile) * tile
    else:
        height = math.ceil(height / tile) * tile
        width = math.ceil(int(height * ratio) / tile) * tile
    return height, width


def tile_rows_cols(height: int, width: int, tile: int) -> tuple[int, int]:
    """(rows, cols) of tiles of an image already in whole tiles; (0, 0) when it is one tile (not split)."""
    if height > tile or width > tile:
        return height // tile, width // tile
    return 0, 0


def image_prompt(rows: int, cols: int, image_seq_len: int) -> str:
    """The text one image becomes in a prompt (see the module notes)."""
    tokens = IMAGE * image_seq_len
    tiles = "".join(
        "".join(f"{FAKE}<row_{r + 1}_col_{c + 1}>{tokens}" for c in range(cols)) + "\n" for r in range(rows)
    )
    return f"{tiles}{chr(10) if rows else ''}{FAKE}{GLOBAL}{tokens}{FAKE}"


def image_prompt_ids(tokenizer: TextTokenizer, rows: int, cols: int, image_seq_len: int) -> list[int]:
    """``image_prompt`` as ids. It starts and ends with a special token, so the ids do not depend on the text
    around it, and tokenising it alone gives what the processor's tokenising of the whole prompt gives."""
    return tokenizer.tokenizer.encode(image_prompt(rows, cols, image_seq_len), add_special_tokens=False).ids


@dataclass(frozen=True)
class SplitImagePreprocessor:
    """Idefics3's image processor: per image its tiles and global view, normalised, as ``pixel_values``
    (B, most crops, 3, tile, tile; zero crops pad), ``pixel_attention_mask`` (B, most crops, tile, tile), and
    each image's tile grid as ``rows`` and ``cols`` (B,), which its prompt layout needs.

    Attributes:
        tile: a crop's transform, a squash to the square tile; its filter does every resize, and its
            ``normalize`` (rescale, mean, std) applies to every crop.
        longest_edge: the first resize's longest edge (transformers' ``size["longest_edge"]``).
        splitting: cut images into tiles (``do_image_splitting``); without it an image is one squashed crop.
    """

    tile: ImagePreprocessor
    longest_edge: int = 4 * 364
    splitting: bool = True

    def __post_init__(self) -> None:
        height, width = self.tile.size
        if self.tile.resize_mode != "squash" or height != width:
            raise ConfigError(f"image splitting tile: expected a squash to a square tile, got {self.tile.to_dict()}")
        if not isinstance(self.longest_edge, int) or self.longest_edge < 1:
            raise ConfigError(f"image splitting: 'longest_edge' must be a positive int, got {self.longest_edge!r}")

    @property
    def side(self) -> int:
        return self.tile.size[0]

    @property
    def size(self) -> tuple[int, int]:
        """One crop's (height, width), what fixed-size readers (training's data path) allocate."""
        return self.tile.size

    def to_uint8(self, images: Sequence[ImageSource], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> torch.Tensor:
        """Each image's one crop, uint8 (B, 3, tile, tile): the fixed-size form training keeps, which only a
        processor that does not split has (a split image's crop count follows its size)."""
        if self.splitting:
            raise ConfigError(
                "image splitting: training reads one fixed-size crop per image; set do_image_splitting false in "
                "the checkpoint's processor config (a split image's crop count follows its size)"
            )
        return torch.stack([self.crops(load_image(source, max_pixels=max_pixels))[0][0] for source in images])

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 crops (..., 3, tile, tile) -> the tower's float32 input."""
        return self.tile.normalize(pixels)

    def _resized(self, image: Image.Image, height: int, width: int) -> Image.Image:
        return dataclasses.replace(self.tile, size=(height, width)).resize_and_crop(image)

    def crops(self, image: Image.Image) -> tuple[torch.Tensor, int, int]:
        """The tiles row by row then the global view, uint8 (crops, 3, tile, tile), and (rows, cols)."""
        image = self._resized(image, *longest_edge_size(image.height, image.width, self.longest_edge))
        rows = cols = 0
        if self.splitting:
            image = self._resized(image, *whole_tiles_size(image.height, image.width, self.side))
            rows, cols = tile_rows_cols(image.height, image.width, self.side)
        pixels, side = np.asarray(image), self.side
        views = [
            pixels[y : y + side, x : x + side] for y in range(0, rows * side, side) for x in range(0, cols * side, side)
        ]
        views.append(np.asarray(self._resized(image, side, side)))
        return torch.from_numpy(np.stack(views)).permute(0, 3, 1, 2), rows, cols

    def __call__(
        self, images: Sequence[ImageSource], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
    ) -> dict[str, torch.Tensor]:
        """``pixel_values``, ``pixel_attention_mask``, ``rows`` and ``cols`` of the images, one row each."""
        if isinstance(images, (str, bytes, Image.Image)) or not isinstance(images, Sequence) or not images:
            raise InputError("SplitImagePreprocessor expects a non-empty list of images; wrap a single image in a list")
        cut = [self.crops(load_image(source, max_pixels=max_pixels)) for source in images]
        most = max(len(views) for views, _, _ in cut)
        batch = torch.zeros(len(cut), most, 3, self.side, self.side)
        mask = torch.zeros(len(cut), most, self.side, self.side, dtype=torch.long)
        for i, (views, _, _) in enumerate(cut):
            batch[i, : len(views)] = self.normalize(views)
            mask[i, : len(views)] = 1
        grids = torch.tensor([[rows, cols] for _, rows, cols in cut], dtype=torch.long).view(-1, 2)
        return {"pixel_values": batch, "pixel_attention_mask": mask, "rows": grids[:, 0], "cols": grids[:, 1]}

    # -------------------------------------------------------------------------------- configs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings for vlmkit's ``preprocessor.json`` (``longest_edge`` marks the kind)."""
        return {"tile": self.tile.to_dict(), "longest_edge": self.longest_edge, "splitting": self.splitting}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> SplitImagePreprocessor:
        if set(config) != {"tile", "longest_edge", "splitting"} or not isinstance(config["tile"], Mapping):
            raise ConfigError(
                f"image splitting preprocessor: expected 'tile', 'longest_edge' and 'splitting', got {sorted(config)}"
            )
        return cls(ImagePreprocessor.from_dict(config["tile"]), config["longest_edge"], bool(config["splitting"]))

    def to_hf_config(self) -> dict[str, Any]:
        """This preprocessing as an ``Idefics3ImageProcessor`` config (the inverse of ``from_hf_config``)."""
        tile = {k: v for k, v in hf_config_of(self.tile).items() if k not in ("size", "do_center_crop")}
        return {
            **tile,
            "image_processor_type": "Idefics3ImageProcessor",
            "size": {"longest_edge": self.longest_edge},
            "max_image_size": {"longest_edge": self.side},
            "do_image_splitting": self.splitting,
            "do_pad": True,
        }

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any]) -> SplitImagePreprocessor:
        """Read an ``Idefics3ImageProcessor`` / ``SmolVLMImageProcessor`` config (transformers' defaults for
        missing fields); a field vlmkit does not support is named, not ignored."""
        unknown = sorted(set(config) - _HF_HANDLED - _HF_IGNORED)
        if unknown:
            raise ConfigError(f"preprocessor_config.json: unsupported setting {unknown[0]!r} for image splitting")
        for key, needed in (("do_resize", True), ("do_pad", True)):
            if bool(config.get(key, True)) != needed:
                raise ConfigError(f"preprocessor_config.json: {key!r} false is unsupported for image splitting")
        side = _edge(config.get("max_image_size", {"longest_edge": 364}), "max_image_size")
        tile = ImagePreprocessor.from_hf_config(
            {
                "size": {"height": side, "width": side},
                "resample": config.get("resample", int(Image.Resampling.LANCZOS)),
                **{k: config[k] for k in ("do_rescale", "rescale_factor", "do_normalize") if k in config},
                "image_mean": config.get("image_mean", (0.5, 0.5, 0.5)),
                "image_std": config.get("image_std", (0.5, 0.5, 0.5)),
            }
        )
        longest = _edge(config.get("size", {"longest_edge": 4 * 364}), "size")
        return cls(tile, longest, bool(config.get("do_image_splitting", True)))


_HF_HANDLED = {
    "do_resize",
    "size",
    "resample",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "do_image_splitting",
    "max_image_size",
    "do_pad",
}
# How transformers runs, not what it computes.
_HF_IGNORED = {"image_processor_type", "processor_class", "do_convert_rgb", "return_row_col_info", "data_format"}
_HF_IGNORED |= {"input_data_format", "return_tensors", "device", "disable_grouping"}


def _edge(value: Any, key: str) -> int:
    if not (isinstance(value, Mapping) and set(value) == {"longest_edge"} and isinstance(value["longest_edge"], int)):
        raise ConfigError(f"preprocessor_config.json: {key!r} must be {{'longest_edge': int}}, got {value!r}")
    return value["longest_edge"]
