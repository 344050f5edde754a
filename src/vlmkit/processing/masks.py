"""Masks to and from the mask tokenizer's 64x64 crops: ``mask_crop`` (an image mask, cut to its box and
resized) and ``paste_mask`` (a decoded crop, resized back into its box on an empty image).

As big_vision prepares PaliGemma's segmentation targets (``refcoco_mask2str``): the box rounded to whole
pixels, the mask cut to it and resized to 64x64 bilinearly with antialiasing, values in [0, 1]; and as
its demo pastes a decoded mask back: resized to the box's size and placed in an otherwise empty mask.
Boxes are vlmkit's ``[x0, y0, x1, y1]`` in pixels, x1 and y1 exclusive (``data.shapesworld.masks.mask_box``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vlmkit.errors import InputError

CROP = 64
"""Side of a mask crop (``config.mask_tokenizer.MASK_SIZE``)."""


def box_pixels(box: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """``box`` rounded to whole pixels and clipped to a ``height`` x ``width`` image; may be empty."""
    if len(box) != 4:
        raise InputError(f"box: expected [x0, y0, x1, y1], got {list(box)!r}")
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    x0, x1 = min(max(x0, 0), width), min(max(x1, 0), width)
    y0, y1 = min(max(y0, 0), height), min(max(y1, 0), height)
    return x0, y0, max(x1, x0), max(y1, y0)


def _resize(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    tensor = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    antialias = height < mask.shape[0] or width < mask.shape[1]  # only shrinking has anything to blur
    out = F.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False, antialias=antialias)
    return out[0, 0].clamp(0.0, 1.0).numpy()


def mask_crop(mask_full: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The (H, W) mask ``mask_full`` (bool or [0, 1]) cut to ``box`` and resized to (64, 64) float32."""
    mask = np.asarray(mask_full)
    if mask.ndim != 2:
        raise InputError(f"mask: expected a 2-D (H, W) mask, got shape {mask.shape}")
    x0, y0, x1, y1 = box_pixels(box, *mask.shape)
    if x1 == x0 or y1 == y0:
        raise InputError(f"box {list(box)!r}: empty inside a {mask.shape[0]}x{mask.shape[1]} mask")
    return _resize(mask[y0:y1, x0:x1].astype(np.float32), CROP, CROP)


def paste_mask(mask64: np.ndarray | torch.Tensor, box: Sequence[float], image_size: tuple[int, int]) -> np.ndarray:
    """A (64, 64) crop of probabilities resized into ``box`` on an empty (height, width) = ``image_size``
    mask, float32 in [0, 1]. A box empty after clipping to the image gives an empty mask."""
    crop = mask64.detach().float().cpu().numpy() if isinstance(mask64, torch.Tensor) else np.asarray(mask64)
    if crop.shape != (CROP, CROP):
        raise InputError(f"mask64: expected shape ({CROP}, {CROP}), got {crop.shape}")
    height, width = (int(v) for v in image_size)
    if height <= 0 or width <= 0:
        raise InputError(f"image_size: expected (height, width) > 0, got {image_size!r}")
    out = np.zeros((height, width), dtype=np.float32)
    x0, y0, x1, y1 = box_pixels(box, height, width)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = _resize(crop, y1 - y0, x1 - x0)
    return out
