"""Pixels and visible masks from a scene.

Objects are painted as a label map ``supersample`` times larger than the output, then each output pixel
counts how many of its sub-pixels each label covers. Those coverage fractions do double duty: they blend
the colours (antialiasing, so images are not trivial pixel patterns) and they decide the visible masks
(a pixel belongs to whichever label covers most of it), so masks and pixels can never disagree, and
occlusion by later objects is accounted for by construction.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from vlmkit.data.shapesworld.geometry import rasterize
from vlmkit.data.shapesworld.scene import Background, Scene


@dataclass(frozen=True)
class Rendering:
    """An RGB image and, per scene object in order, its visible mask (bool, H x W)."""

    image: Image.Image
    masks: list[np.ndarray]


@functools.lru_cache(maxsize=8)
def _block_index(side: int, factor: int) -> np.ndarray:
    """For each pixel of the ``side*factor`` grid, the flat index of the output pixel it falls in."""
    rows = np.arange(side * factor) // factor
    return (rows[:, None] * side + rows[None, :]).ravel()


def render_background(background: Background, side: int) -> np.ndarray:
    """The background as float RGB (side x side x 3)."""
    pixels = np.empty((side, side, 3), dtype=np.float64)
    pixels[:] = background.rgb
    if background.kind == "textured":
        coords = (np.arange(side) + 0.5) / side - 0.5
        ramp = (
            math.cos(background.gradient_angle) * coords[None, :]
            + math.sin(background.gradient_angle) * coords[:, None]
        )
        noise = np.random.default_rng(background.noise_seed).normal(0.0, background.noise_std, (side, side))
        pixels += (background.gradient_strength * ramp + noise)[:, :, None]
    return pixels


def render_scene(scene: Scene, size: int, supersample: int = 4) -> Rendering:
    """Draw ``scene`` at ``size`` x ``size`` pixels with ``supersample``-fold antialiasing."""
    labels = rasterize([obj.outline() for obj in scene.objects], size * supersample)
    k = len(scene.objects) + 1
    counts = np.bincount(_block_index(size, supersample) * k + labels.ravel(), minlength=size * size * k)
    coverage = counts.reshape(size, size, k) / float(supersample * supersample)
    colors = np.array([obj.rgb for obj in scene.objects], dtype=np.float64).reshape(-1, 3)
    pixels = coverage[:, :, :1] * render_background(scene.background, size) + coverage[:, :, 1:] @ colors
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")
    owner = counts.reshape(size, size, k).argmax(axis=2)
    return Rendering(image, [owner == i + 1 for i in range(k - 1)])
