"""Scan-like degradation: skew, blur, uneven lighting, sensor noise, JPEG, in the order a scanner adds them.

Skew comes first (the page lies crooked on the glass), then the optics blur, the lamp lights the glass
unevenly, the sensor adds noise, and the file is a JPEG. Lighting and noise are one numpy pass after the blur
(lighting is smooth, so blurring before or after it gives the same page). Rotation is our own affine map,
not ``Image.rotate``'s internals, so the very matrix that moves the pixels also moves the ground-truth boxes:
each box's four corners go through it and the box becomes their axis-aligned bounding box.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from vlmkit.data.docworld.config import DocWorldConfig
from vlmkit.documents.types import Box

PNG_COMPRESS_LEVEL = 6  # part of the byte-identical promise: change it only with GENERATOR_VERSION
LIGHTING_GRID = 16
"""The lighting field is drawn on a grid this many times coarser than the page, then smoothly upsampled."""


@dataclass(frozen=True)
class Scan:
    """One page's sampled degradation, as ``meta`` records it: skew in degrees (counter-clockwise), blur
    radius and noise standard deviation in pixels and grey levels, the darkest lighting loss, JPEG quality."""

    rotation: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    lighting: float = 0.0
    jpeg_quality: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: round(v, 4) if isinstance(v, float) else v for key, v in asdict(self).items()}


def sample_scan(config: DocWorldConfig, rng: np.random.Generator) -> Scan:
    """The degradation of one page; always the same draws from ``rng``, so changing one knob keeps the rest."""
    draws = rng.uniform(0.0, 1.0, size=5)
    if config.clean:
        return Scan()
    quality = None
    if config.jpeg_quality is not None:
        low, high = config.jpeg_quality
        quality = low + min(int(draws[4] * (high - low + 1)), high - low)
    return Scan(
        rotation=float((2 * draws[0] - 1) * config.max_rotation),
        blur=float(draws[1] * config.blur),
        noise=float(draws[2] * config.noise),
        lighting=float(draws[3] * config.lighting),
        jpeg_quality=quality,
    )


def rotation(size: tuple[int, int], degrees: float) -> tuple[tuple[int, int], np.ndarray]:
    """The canvas size after rotating a ``size`` page by ``degrees`` counter-clockwise with nothing cut off,
    and the 2 x 3 matrix taking page points to points on it."""
    width, height = size
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    out = (
        math.ceil(abs(cos) * width + abs(sin) * height - 1e-6),
        math.ceil(abs(sin) * width + abs(cos) * height - 1e-6),
    )
    # y points down, so a counter-clockwise turn on screen is (dx, dy) -> (cos dx + sin dy, -sin dx + cos dy)
    linear = np.array([[cos, sin], [-sin, cos]])
    shift = np.array(out) / 2 - linear @ (np.array(size) / 2)
    return out, np.column_stack([linear, shift])


def move_box(matrix: np.ndarray) -> Callable[[Box], Box]:
    """Boxes through ``matrix``: the axis-aligned bounding box of the four moved corners."""

    def move(box: Box) -> Box:
        x0, y0, x1, y1 = box
        corners = matrix @ np.array([[x0, x1, x1, x0], [y0, y0, y1, y1], [1.0, 1.0, 1.0, 1.0]])
        return (float(corners[0].min()), float(corners[1].min()), float(corners[0].max()), float(corners[1].max()))

    return move


def _rotate(image: Image.Image, degrees: float) -> tuple[Image.Image, np.ndarray]:
    size, matrix = rotation(image.size, degrees)
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]  # PIL wants output -> input
    data = tuple(float(v) for v in inverse.ravel())
    # bilinear: 2.4 times cheaper than bicubic, and what it softens the blur step softens anyway
    return image.transform(size, Image.Transform.AFFINE, data, Image.Resampling.BILINEAR, fillcolor=255), matrix


def _lighting_field(size: tuple[int, int], strength: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness factors in [1 - strength, 1]: a linear falloff across the page at a random angle plus a
    vignette around a random point, as a lamp or a phone camera leaves."""
    width, height = size
    gw, gh = max(2, width // LIGHTING_GRID), max(2, height // LIGHTING_GRID)
    ys, xs = np.mgrid[0:gh, 0:gw].astype(np.float64)
    xs, ys = xs / (gw - 1), ys / (gh - 1)
    angle, cx, cy, mix = rng.uniform(0, 2 * math.pi), rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1)
    ramp = (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle)
    vignette = np.hypot(xs - cx, ys - cy)
    dark = mix * ramp + (1 - mix) * vignette
    dark = (dark - dark.min()) / max(float(dark.max() - dark.min()), 1e-9)
    coarse = Image.fromarray((1.0 - strength * dark).astype(np.float32), "F")
    return np.asarray(coarse.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


def _unmoved(box: Box) -> Box:
    return box


def degrade(image: Image.Image, scan: Scan, rng: np.random.Generator) -> tuple[Image.Image, Callable[[Box], Box]]:
    """``image`` as scanned by ``scan`` (noise and lighting drawn from ``rng``), and where its boxes go."""
    move: Callable[[Box], Box] = _unmoved
    if scan.rotation:
        image, matrix = _rotate(image, scan.rotation)
        move = move_box(matrix)
    if scan.blur > 0:
        image = image.filter(ImageFilter.GaussianBlur(scan.blur))
    if scan.lighting > 0 or scan.noise > 0:
        pixels = np.array(image, dtype=np.float32)  # a copy, worked on in place (a page is 1M pixels)
        if scan.lighting > 0:
            pixels *= _lighting_field(image.size, scan.lighting, rng)
        if scan.noise > 0:
            noise = rng.standard_normal(pixels.shape, dtype=np.float32)
            noise *= np.float32(scan.noise)
            pixels += noise
        np.clip(np.rint(pixels, out=pixels), 0, 255, out=pixels)
        image = Image.fromarray(pixels.astype(np.uint8), "L")
    return image, move


def encode(image: Image.Image, scan: Scan) -> bytes:
    """The file's bytes: JPEG at the scan's quality, or PNG when there is none."""
    buffer = io.BytesIO()
    if scan.jpeg_quality is None:
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        image.save(buffer, format="JPEG", quality=scan.jpeg_quality)
    return buffer.getvalue()
