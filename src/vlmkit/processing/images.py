"""Images in, pixel tensors out: decoding that survives real files, and the CLIP/SigLIP transforms.

Two jobs live here. ``load_image`` turns whatever a user hands us (a path, raw bytes, a PIL image) into
an upright 8-bit RGB image or a one-line ``InputError``; it is where hostile or odd files are stopped.
``ImagePreprocessor`` turns a batch of those into the normalised ``(B, 3, H, W)`` float32 tensor a vision
tower expects, reproducing the Hugging Face processors closely enough that checkpoints trained with
them see the pixels they were trained on.

Parity notes (Hugging Face ``CLIPImageProcessor`` / ``SiglipImageProcessor``, PIL backend):

- resizing is Pillow's ``Image.resize`` on the 8-bit image, so we call the same function;
- "shortest_edge" scales the short side to ``N`` and the long side to ``int(N * long / short)`` (floor);
- the centre crop starts at ``(side - crop) // 2`` on each axis;
- rescale and normalise happen in float32 after the crop.

We resize only the part of the image the crop keeps (Pillow's ``box`` argument). Pillow still reads
source pixels outside the box for the filter support, so this matches resizing the whole image and then
cropping (up to float rounding of the filter positions: a rare pixel differs by one or two levels) while
skipping the discarded columns or rows, 15-30% faster on large photos.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.hf_images import hf_config_of, settings_from_hf

ImageSource = str | Path | bytes | Image.Image

DEFAULT_MAX_PIXELS = 64_000_000
"""Largest width * height ``load_image`` decodes by default: a 64 MP photo is ~190 MB as RGB."""

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "PPM", "AVIF")
"""All ``load_image`` opens (JPEG includes MPO); never Pillow's other plugins (EPS would run Ghostscript)."""

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)

_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,  # Idefics3 / SmolVLM
}
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


# --------------------------------------------------------------------------------------------- loading


def load_image(
    source: ImageSource, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, min_side: int | None = None
) -> Image.Image:
    """Decode ``source`` (a file in ``IMAGE_FORMATS``) into an upright 8-bit RGB image, or raise ``InputError``.

    ``max_pixels`` (width * height, ``None``: no limit) is checked on the header before any pixel is decoded
    (a decompression bomb is refused unallocated). ``min_side`` lets a large image arrive smaller, both
    sides kept >= it (JPEG: a reduced DCT scale, ``Image.draft``; then ``Image.reduce`` by a whole factor).
    Transparency goes onto white, as in ``transformers``; multi-frame files give their first frame. A PIL
    image that is already upright RGB (and not reduced) is returned as is, not copied.
    """
    name = _describe(source)
    if isinstance(source, Image.Image):
        _check_pixels(source, name, max_pixels)
        image = _to_rgb(_upright(source, name, in_place=False), name)
    else:
        with open_image(source) as opened:  # closes the file even for multi-frame formats, which load() leaves open
            _check_pixels(opened, name, max_pixels)
            opened.draft(None, (min_side, min_side) if min_side else None)  # a no-op but for JPEG
            image = _to_rgb(_upright(opened, name, in_place=True), name)
    factor = min(image.size) // min_side if min_side else 1
    return image.reduce(factor) if factor > 1 else image


def open_image(source: str | Path | bytes) -> Image.Image:
    """``Image.open`` (the header only) in ``IMAGE_FORMATS``; failures become one-line ``InputError``s."""
    name = _describe(source)
    Image.init()  # registers every plugin (once), so that the allow-list can be checked against them
    formats = [known for known in IMAGE_FORMATS if known in Image.OPEN]
    try:
        return Image.open(io.BytesIO(source) if isinstance(source, bytes) else Path(source), formats=formats)
    except FileNotFoundError:
        raise InputError(f"{name}: file not found") from None
    except UnidentifiedImageError:
        raise InputError(f"{name}: not a readable image (unknown or corrupt format)") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"{name}: refused by Pillow's size guard ({exc})") from None
    except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte or an unencodable character
        raise InputError(f"{name}: cannot open ({getattr(exc, 'strerror', None) or exc})") from None


def _describe(source: ImageSource) -> str:
    if isinstance(source, bytes):
        return f"image bytes ({len(source)} B)"
    if isinstance(source, Image.Image):
        return f"PIL image ({source.mode} {source.width}x{source.height})"
    return str(source)


def _check_pixels(image: Image.Image, name: str, max_pixels: int | None) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise InputError(f"{name}: image has no pixels ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise InputError(
            f"{name}: {width}x{height} = {width * height} pixels exceeds the limit of {max_pixels} "
            "(raise max_pixels if the image is trusted)"
        )


def _upright(image: Image.Image, name: str, *, in_place: bool) -> Image.Image:
    """Decode the pixels and apply the EXIF orientation, so phone photos are not sideways."""
    try:
        image.load()
        if image.getexif().get(0x0112, 1) == 1:  # 0x0112 = Orientation; 1 = already upright
            return image
        if in_place:
            ImageOps.exif_transpose(image, in_place=True)
            return image
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data; SyntaxError: late headers
        raise InputError(f"{name}: corrupt or truncated image ({exc})") from None


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "I":
        image = _wide_gray_to_8bit(image)
    try:
        if "A" in image.getbands() or image.info.get("transparency") is not None:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return image if image.mode == "RGB" else image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise InputError(f"{name}: cannot convert colour mode {image.mode!r} to RGB ({exc})") from None


def _wide_gray_to_8bit(image: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer) grayscale to 8 bits by range: ``convert("L")`` would clip at 255. Mode
    ``I`` (how Pillow often holds 16-bit PNGs) may hold 8-bit data: 16-bit only when a value exceeds 255."""
    values = np.asarray(image, dtype=np.float64)
    eight_bit_data = image.mode == "I" and values.max(initial=0) <= 255
    scaled = values if eight_bit_data else values / 257.0  # 65535 / 257 = 255 exactly
    eight_bit = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    eight_bit.info = {k: v for k, v in image.info.items() if k != "transparency"}
    return eight_bit


# ---------------------------------------------------------------------------------------- transforms


ResizeMode = Literal["shortest_edge", "squash"]
Resample = Literal["bicubic", "bilinear", "lanczos"]


@dataclass(frozen=True)
class ImagePreprocessor:
    """Resize, crop and normalise images into a ``(B, 3, height, width)`` float32 batch.

    Attributes:
        size: output ``(height, width)`` in pixels.
        resize_mode: ``"shortest_edge"`` scales the short side to ``shortest_edge`` keeping the aspect
            ratio, then centre-crops to ``size`` (CLIP). ``"squash"`` resizes straight to ``size``,
            ignoring the aspect ratio, so nothing is cut off (SigLIP).
        shortest_edge: target of the short side in ``"shortest_edge"`` mode; ``None`` means
            ``max(size)``, which is what CLIP checkpoints use. Must be at least ``max(size)`` so the crop
            never needs padding.
        resample: Pillow filter for resizing.
        rescale_factor: multiplies 8-bit values before normalising (1/255 maps them to [0, 1]).
        mean, std: per-channel normalisation applied after rescaling: ``(x * rescale_factor - mean) / std``.
    """

    size: tuple[int, int] = (224, 224)
    resize_mode: ResizeMode = "shortest_edge"
    shortest_edge: int | None = None
    resample: Resample = "bicubic"
    rescale_factor: float = 1 / 255
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    def __post_init__(self) -> None:
        # Coerce JSON lists to tuples so that configs compare and hash equal after a round-trip.
        for name in ("size", "mean", "std"):
            value = getattr(self, name)
            if not isinstance(value, Sequence) or isinstance(value, str):
                raise _field_error(name, "a list", value)
            object.__setattr__(self, name, tuple(value))
        if len(self.size) != 2 or not all(isinstance(s, int) and s > 0 for s in self.size):
            raise _field_error("size", "[height, width] > 0", list(self.size))
        if self.resize_mode not in ("shortest_edge", "squash"):
            raise _field_error("resize_mode", "'shortest_edge' or 'squash'", self.resize_mode)
        if self.resample not in _RESAMPLE:
            raise _field_error("resample", f"one of {sorted(_RESAMPLE)}", self.resample)
        if self.shortest_edge is not None and self.resize_mode != "shortest_edge":
            raise _field_error("shortest_edge", "null unless resize_mode is 'shortest_edge'", self.shortest_edge)
        if self.shortest_edge is not None and (
            not isinstance(self.shortest_edge, int) or self.shortest_edge < max(self.size)
        ):
            raise _field_error("shortest_edge", f"an int >= max(size) = {max(self.size)}", self.shortest_edge)
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) != 3 or not all(isinstance(v, (int, float)) for v in value):
                raise _field_error(name, "3 numbers", list(value))
        if any(s <= 0 for s in self.std):
            raise _field_error("std", "positive values", list(self.std))
        if not isinstance(self.rescale_factor, (int, float)) or self.rescale_factor <= 0:
            raise _field_error("rescale_factor", "a number > 0", self.rescale_factor)

    # -------------------------------------------------------------------------------- presets

    @classmethod
    def clip(cls, size: int = 224) -> ImagePreprocessor:
        """OpenAI CLIP: bicubic shortest-edge resize to ``size``, centre crop, CLIP mean/std."""
        return cls(size=(size, size), resize_mode="shortest_edge", resample="bicubic", mean=CLIP_MEAN, std=CLIP_STD)

    @classmethod
    def siglip(cls, size: int = 224) -> ImagePreprocessor:
        """SigLIP: bicubic squash to ``size`` x ``size``, values mapped to [-1, 1]."""
        return cls(size=(size, size), resize_mode="squash", resample="bicubic", mean=SIGLIP_MEAN, std=SIGLIP_STD)

    # -------------------------------------------------------------------------------- apply

    def __call__(self, images: Sequence[ImageSource], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> torch.Tensor:
        """Load (see ``load_image``) and transform each image; returns ``(B, 3, H, W)`` float32."""
        return self.normalize(self.to_uint8(images, max_pixels=max_pixels))

    def to_uint8(self, images: Sequence[ImageSource], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> torch.Tensor:
        """The geometric half: each image loaded, resized and cropped, as uint8 ``(B, 3, H, W)``.

        Training keeps a dataset in this form (a quarter of float32's memory) and normalises per batch,
        so training and inference share one implementation of both halves.
        """
        if isinstance(images, (str, Path, bytes, Image.Image)):
            raise InputError("ImagePreprocessor expects a list of images; wrap a single image in a list")
        height, width = self.size
        batch = np.empty((len(images), height, width, 3), dtype=np.uint8)
        for i, source in enumerate(images):
            batch[i] = np.asarray(self.resize_and_crop(load_image(source, max_pixels=max_pixels)))
        return torch.from_numpy(batch).permute(0, 3, 1, 2)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """The value half: uint8 ``(B, 3, H, W)`` from ``to_uint8`` -> the float32 input of the vision tower."""
        scale = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1) / self.rescale_factor
        shift = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1) / self.rescale_factor
        # (x * r - m) / s == (x - m / r) / (s / r): one subtract and one divide over the batch.
        return pixels.to(torch.float32).sub_(shift).div_(scale).contiguous()

    def resize_and_crop(self, image: Image.Image) -> Image.Image:
        """The geometric part alone: an RGB image of exactly ``size``, still 8-bit."""
        height, width = self.size
        resample = _RESAMPLE[self.resample]
        if self.resize_mode == "squash":
            return image.resize((width, height), resample=resample)
        src_w, src_h = image.size
        new_w, new_h = _shortest_edge_size(src_w, src_h, self.shortest_edge or max(self.size))
        left, top = (new_w - width) // 2, (new_h - height) // 2
        sx, sy = src_w / new_w, src_h / new_h
        box = (left * sx, top * sy, (left + width) * sx, (top + height) * sy)
        return image.resize((width, height), resample=resample, box=box)

    # -------------------------------------------------------------------------------- configs

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values, for vlmkit's ``preprocessor.json``."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> ImagePreprocessor:
        """Inverse of ``to_dict``; an unknown key is a ``ConfigError`` rather than silently ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(f"image preprocessor: unknown field {unknown[0]!r} (known: {sorted(known)})")
        try:
            return cls(**config)
        except TypeError as exc:
            raise ConfigError(f"image preprocessor: {exc}") from None

    def to_hf_config(self) -> dict[str, Any]:
        """This preprocessing as a Hugging Face ``preprocessor_config.json`` (the inverse of ``from_hf_config``)."""
        return hf_config_of(self)

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any]) -> ImagePreprocessor:
        """Read a Hugging Face ``preprocessor_config.json`` (CLIP or SigLIP image processor)."""
        return cls(**settings_from_hf(config))


def _field_error(name: str, expected: str, got: Any) -> ConfigError:
    return ConfigError(f"image preprocessor field {name!r}: expected {expected}, got {got!r}")


def _shortest_edge_size(width: int, height: int, edge: int) -> tuple[int, int]:
    """Output (width, height) with the short side ``edge`` and the long side floored, as transformers."""
    if width <= height:
        return edge, int(edge * height / width)
    return int(edge * width / height), edge
