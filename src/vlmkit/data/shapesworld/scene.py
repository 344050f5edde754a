"""Sampling a scene: which objects, where, in what colours, on what background.

A scene is pure data (no pixels). Everything random about an image is drawn here from one
``numpy.random.Generator``, so an image's seed fixes its scene, and ``render.render_scene`` is a pure
function of the scene. The overlap rule is enforced on a rasterisation at the output resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vlmkit.data.shapesworld.config import COLORS, SIZES, ShapesWorldConfig
from vlmkit.data.shapesworld.geometry import place_outline, rasterize

PLACEMENT_ATTEMPTS = 40
"""Tries per object before the scene settles for fewer objects."""


@dataclass(frozen=True)
class SceneObject:
    """One drawn object; ``center`` and ``radius`` are fractions of the image side."""

    shape: str
    color: str
    size: str
    rgb: tuple[int, int, int]
    center: tuple[float, float]
    radius: float
    rotation: float

    def outline(self) -> np.ndarray:
        return place_outline(self.shape, self.center, self.radius, self.rotation)


@dataclass(frozen=True)
class Background:
    """A flat grey ``rgb``, plus for "textured" a linear gradient and seeded luminance noise."""

    kind: str
    rgb: tuple[int, int, int]
    gradient_angle: float
    gradient_strength: float
    noise_std: float
    noise_seed: int


@dataclass(frozen=True)
class Scene:
    """Objects in drawing order (later ones on top) over a background."""

    objects: tuple[SceneObject, ...]
    background: Background


def sample_background(rng: np.random.Generator, config: ShapesWorldConfig) -> Background:
    kind = config.background if config.background != "mixed" else ("plain", "textured")[rng.integers(2)]
    level = int(rng.integers(30, 81))
    tint = rng.integers(-6, 7, size=3)
    rgb = tuple(int(v) for v in np.clip(level + tint, 0, 255))
    textured = kind == "textured"
    return Background(
        kind=kind,
        rgb=rgb,  # type: ignore[arg-type]
        gradient_angle=float(rng.uniform(0.0, 2.0 * math.pi)) if textured else 0.0,
        gradient_strength=float(rng.uniform(10.0, 30.0)) if textured else 0.0,
        noise_std=config.noise_std if textured else 0.0,
        noise_seed=int(rng.integers(2**31)) if textured else 0,
    )


def subject_sizes(count: int) -> tuple[str, ...]:
    """Sizes the first object (the scene's subject, its classification label) may take: any when it is
    alone, else medium or large so that every other object can be drawn strictly smaller. Without this,
    two objects of the top size often tie and "the biggest shape" would be decided by a few pixels."""
    return tuple(SIZES) if count == 1 else tuple(SIZES)[1:]


def smaller_sizes(size: str) -> tuple[str, ...]:
    names = tuple(SIZES)
    return names[: names.index(size)]


def sample_object(
    rng: np.random.Generator, config: ShapesWorldConfig, pairs: list[tuple[str, str]], sizes: tuple[str, ...]
) -> SceneObject:
    color, shape = pairs[rng.integers(len(pairs))]
    size = sizes[rng.integers(len(sizes))]
    radius = SIZES[size] / 2 * float(rng.uniform(0.95, 1.05))
    rotation = float(rng.uniform(-config.max_rotation, config.max_rotation))
    jitter = rng.integers(-config.color_jitter, config.color_jitter + 1, size=3)
    rgb = tuple(int(v) for v in np.clip(np.array(COLORS[color]) + jitter, 0, 255))
    # Place the bounding box of the rotated outline inside the image with a one-pixel border.
    extent = place_outline(shape, (0.0, 0.0), radius, rotation)
    lo, hi = extent.min(axis=0), extent.max(axis=0)
    pad = 1.0 / config.image_size
    cx = float(rng.uniform(pad - lo[0], 1.0 - pad - hi[0]))
    cy = float(rng.uniform(pad - lo[1], 1.0 - pad - hi[1]))
    return SceneObject(shape, color, size, rgb, (cx, cy), radius, rotation)  # type: ignore[arg-type]


def sample_scene(
    rng: np.random.Generator, config: ShapesWorldConfig, split: str, first_pairs: list[tuple[str, str]]
) -> Scene:
    """Draw a background and up to ``config.max_objects`` objects, each hiding at most
    ``config.max_overlap`` of any earlier object's area. The first object is the subject: its (colour,
    shape) comes from ``first_pairs`` (the compositional split passes its held-out pairs) and every other
    object is of a smaller size class (at least half its area), so "the biggest shape" is never a tie.
    """
    background = sample_background(rng, config)
    pairs = config.allowed_pairs(split)
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    side = config.image_size
    objects: list[SceneObject] = []
    areas: list[int] = []
    visible: list[np.ndarray] = []
    for _ in range(count):
        for _ in range(PLACEMENT_ATTEMPTS):
            if objects:
                candidate = sample_object(rng, config, pairs, smaller_sizes(objects[0].size))
            else:
                candidate = sample_object(rng, config, first_pairs, subject_sizes(count))
            footprint = rasterize([candidate.outline()], side) > 0
            remaining = [v & ~footprint for v in visible]
            if all(r.sum() >= (1.0 - config.max_overlap) * a for r, a in zip(remaining, areas, strict=True)):
                objects.append(candidate)
                areas.append(int(footprint.sum()))
                visible = [*remaining, footprint]
                break
    return Scene(tuple(objects), background)
