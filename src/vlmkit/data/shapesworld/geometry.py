"""Shape outlines as polygons, and the one rasteriser everything uses.

Every shape, circles and hearts included, is a polygon, so rotation, placement and rasterisation have
one code path. Outlines are centred on their bounding box and scaled to the area of the unit circle
(pi): a "large star" and a "large square" cover the same number of pixels, which keeps size words true.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw


def _regular(n: int, start_deg: float = -90.0) -> np.ndarray:
    angles = np.deg2rad(start_deg + 360.0 * np.arange(n) / n)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    outline = _regular(2 * points)
    outline[1::2] *= inner
    return outline


def _cross(arm: float = 0.34) -> np.ndarray:
    a = arm
    return np.array(
        [(-a, -1), (a, -1), (a, -a), (1, -a), (1, a), (a, a), (a, 1), (-a, 1), (-a, a), (-1, a), (-1, -a), (-a, -a)],
        dtype=np.float64,
    )


def _heart(n: int = 72) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return np.stack([x, y], axis=1)


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _normalise(points: np.ndarray) -> np.ndarray:
    """Centre on the bounding box and scale to area pi (the unit circle's)."""
    centred = points - (points.min(axis=0) + points.max(axis=0)) / 2
    return centred * math.sqrt(math.pi / _polygon_area(centred))


UNIT_OUTLINES: dict[str, np.ndarray] = {
    name: _normalise(points)
    for name, points in {
        "circle": _regular(64),
        "square": np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], dtype=np.float64),
        "triangle": _regular(3),
        "diamond": np.array([(0, -1), (0.62, 0), (0, 1), (-0.62, 0)], dtype=np.float64),
        "star": _star(),
        "hexagon": _regular(6, start_deg=0.0),
        "cross": _cross(),
        "heart": _heart(),
    }.items()
}
"""Shape name -> (V, 2) outline in image axes (y down), centred, area pi."""


def place_outline(shape: str, center: tuple[float, float], radius: float, rotation_deg: float) -> np.ndarray:
    """The outline of ``shape`` rotated, scaled by ``radius`` and moved to ``center`` (same units)."""
    theta = math.radians(rotation_deg)
    rot = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    return UNIT_OUTLINES[shape] @ rot * radius + np.asarray(center)


def rasterize(polygons: list[np.ndarray], side: int) -> np.ndarray:
    """Paint ``polygons`` (coordinates as fractions of the side) in order onto a ``side`` x ``side``
    uint8 label map: pixel value k+1 where polygon k is topmost, 0 for background."""
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    for k, polygon in enumerate(polygons):
        draw.polygon([(float(x), float(y)) for x, y in polygon * side], fill=k + 1)
    return np.asarray(canvas)
