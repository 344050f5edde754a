"""Reading a ShapesWorld image back into objects: colour segmentation, connected components, and shape
by template matching against ShapesWorld's own outlines.

No learned model: the renderer (``data.shapesworld.render``) paints flat named colours (plus a small
jitter) over a dark grey background, antialiased at the edges. So each pixel is explained as a blend
``alpha colour + (1 - alpha) background`` of the background (the median of the image's grey pixels) and
the named colour that fits best; pixels with ``alpha >= 0.5`` belong to that colour. Each connected
region of one colour is an object. Its shape is the outline (``geometry.UNIT_OUTLINES``, rotated within
the generator's +-20 degrees, scaled to the region's area, centred on its box) whose rasterisation
overlaps the region best (IoU); its size is the named size nearest in area.

``validate_reader`` measures it on real renders against their exact ground truth (shape, colour and
size of every object, and the box centres), which is what makes it fit to score generated images.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image

from vlmkit.data.shapesworld.config import COLORS, SHAPES, SIZES
from vlmkit.data.shapesworld.geometry import place_outline, rasterize

ROTATIONS = tuple(range(-20, 21, 5))
"""Rotations (degrees) tried per shape: the generator's ``max_rotation`` is 20."""
SUPERSAMPLE = 4
"""Sub-pixels per side when painting a candidate outline (the renderer's default antialiasing)."""
FLAT_SHARE = 0.15
"""An exact colour on at least this share of a small object's area is one object's flat interior."""
DISTINCT_JITTER = 4
"""Two flat colours are two objects only if some channel differs by more than this: resampling an image
(a model's output resized up) leaves near-copies of one interior colour, a few units apart."""
RIM_RESIDUAL = 20.0
"""Largest mean RGB distance of a region from the blend line of a neighbour's colour for it to be that
neighbour's rim."""
INTERIOR_DISTANCE = 45.0
"""Largest RGB distance from a named colour at which a pixel is that colour's interior: the jitter moves
a colour by at most ~21, and the nearest two named colours are ~100 apart."""
MIN_AREA_SHARE = 0.3
"""A region smaller than this share of a small object's area is noise (a stray blended pixel), not an object."""


@dataclass(frozen=True)
class ReadObject:
    """One object as read: named attributes, the visible box ``[x0, y0, x1, y1]`` (pixels, inclusive-
    exclusive) and its centre, the region's area in pixels, and how well the best outline fits (IoU)."""

    shape: str
    color: str
    size: str
    box: tuple[int, int, int, int]
    area: int
    fit: float

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


_NAMES = list(COLORS)
_PALETTE = np.array([COLORS[name] for name in _NAMES], dtype=np.float64)  # (K, 3)


def background_colour(pixels: np.ndarray) -> np.ndarray:
    """The median of the image's unsaturated dark pixels (the renderer's backgrounds are grey, 30-80)."""
    flat = pixels.reshape(-1, 3)
    grey = flat[(flat.max(1) - flat.min(1) < 30) & (flat.max(1) < 130)]
    return np.median(grey if len(grey) else flat, axis=0)


def colour_fit(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(interior, alpha): per pixel the index of the named colour it shows fully (within
    ``INTERIOR_DISTANCE`` of it, else -1), and per pixel and colour the ``alpha`` of the blend
    ``alpha colour + (1 - alpha) background`` nearest to it ((H, W) and (H, W, K)).

    Interiors decide which objects there are; blends only extend them over their antialiased edges. The
    order matters: a brown pixel is also half an orange one, so no pixel's colour is decided by its blend.
    """
    x = pixels.astype(np.float64).reshape(-1, 1, 3)
    bg = background_colour(pixels)
    direction = _PALETTE[None] - bg  # (1, K, 3): from the background to each colour
    alpha = np.clip(((x - bg) * direction).sum(-1) / (direction**2).sum(-1), 0.0, 1.0)  # (N, K)
    distance = np.sqrt(((x - _PALETTE[None]) ** 2).sum(-1))  # (N, K)
    nearest = distance.argmin(1)
    interior = np.where(distance[np.arange(len(nearest)), nearest] < INTERIOR_DISTANCE, nearest, -1)
    return interior.reshape(pixels.shape[:2]), alpha.reshape(*pixels.shape[:2], -1)


def dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    """``mask`` grown by ``steps`` pixels (8-neighbourhood)."""
    grown = mask.copy()
    for _ in range(steps):
        padded = np.pad(grown, 1)
        grown = np.zeros_like(grown)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                grown |= padded[dy : dy + mask.shape[0], dx : dx + mask.shape[1]]
    return grown


def erode(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` whose four neighbours are in it too."""
    padded = np.pad(mask, 1)
    return mask & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]


def components(labels: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(label, boolean mask) of each 4-connected region of one label; label -1 is background."""
    height, width = labels.shape
    seen = labels < 0
    found = []
    for start in zip(*np.nonzero(~seen), strict=True):
        if seen[start]:
            continue
        label, mask, queue = labels[start], np.zeros_like(seen), deque([start])
        seen[start] = True
        while queue:
            y, x = queue.popleft()
            mask[y, x] = True
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < height and 0 <= nx < width and not seen[ny, nx] and labels[ny, nx] == label:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        found.append((int(label), mask))
    return found


def flat_colour(pixels: np.ndarray, mask: np.ndarray, min_pixels: int) -> tuple[int, ...] | None:
    """The exact RGB value most of ``mask``'s core shows, when it covers ``min_pixels`` (a flat interior)."""
    values, counts = np.unique(pixels[erode(mask)].reshape(-1, 3), axis=0, return_counts=True)
    if not len(counts):
        return None
    top = counts.argmax()
    return tuple(int(v) for v in values[top]) if counts[top] >= min_pixels else None


def split_flat_colours(pixels: np.ndarray, mask: np.ndarray, min_pixels: int) -> list[np.ndarray]:
    """A region of one named colour split by the exact colours of its flat interior.

    Two touching objects of one named colour differ by the renderer's colour jitter, and each object's
    interior is one exact RGB value. When the region's core (the pixels whose four neighbours are in it
    too: not an edge, whose blends repeat along a straight side) holds two or more such values (each on
    at least ``min_pixels`` pixels), each pixel goes to the value it is nearest; otherwise (one object, or an
    image without flat colours, such as a generated one) it stays whole.
    """
    values, counts = np.unique(pixels[erode(mask)].reshape(-1, 3), axis=0, return_counts=True)
    flat: list[np.ndarray] = []
    for value in values[np.argsort(-counts)][np.sort(counts)[::-1] >= min_pixels].astype(np.float64):
        if all(np.abs(value - kept).max() > DISTINCT_JITTER for kept in flat):  # not a resampling's near-copy
            flat.append(value)
    if len(flat) < 2:
        return [mask]
    ys, xs = np.nonzero(mask)
    nearest = ((pixels[ys, xs].astype(np.float64)[:, None] - np.array(flat)[None]) ** 2).sum(-1).argmin(1)
    parts = []
    for k in range(len(flat)):
        part = np.zeros_like(mask)
        part[ys[nearest == k], xs[nearest == k]] = True
        parts.append(part)
    return parts


def object_seeds(pixels: np.ndarray, interior: np.ndarray, min_pixels: int) -> list[tuple[int, np.ndarray]]:
    """(colour, interior mask) per object: connected interiors of one colour, split where they hold two
    flat colours, and joined where two pieces share one (an object cut in two by an object on top)."""
    seeds: dict[object, tuple[int, np.ndarray]] = {}
    for colour, region in components(interior):
        for k, seed in enumerate(split_flat_colours(pixels, region, min_pixels)):
            key = flat_colour(pixels, seed, min_pixels) or (id(region), k)
            if key in seeds:
                seeds[key] = (colour, seeds[key][1] | seed)
            else:
                seeds[key] = (colour, seed)
    return list(seeds.values())


def _area_fraction(size: str) -> float:
    """The area of a ``size`` object as a fraction of the image's area (SIZES are equal-area diameters)."""
    return math.pi * (SIZES[size] / 2) ** 2


def coverage(shape: str, center: tuple[float, float], radius: float, rotation: float, window: tuple[int, int, int]):
    """The share of each pixel of ``window`` (x0, y0, span, in pixels) that an outline (centre and radius in
    pixels) covers, computed as the renderer does: painted ``SUPERSAMPLE`` times finer, averaged per pixel."""
    x0, y0, span = window
    outline = (place_outline(shape, center, radius, rotation) - (x0, y0)) / span
    fine = rasterize([outline], span * SUPERSAMPLE) > 0
    return fine.reshape(span, SUPERSAMPLE, span, SUPERSAMPLE).mean(axis=(1, 3))


def _centroid_offset(shape: str, rotation: float) -> np.ndarray:
    """Where a unit outline's area centroid sits relative to its placement centre (its box's centre)."""
    points = place_outline(shape, (0.0, 0.0), 1.0, rotation)
    x, y = points[:, 0], points[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2
    return np.array([((x + np.roll(x, -1)) * cross).sum(), ((y + np.roll(y, -1)) * cross).sum()]) / (6 * area)


def classify_shape(
    coverage_map: np.ndarray, mask: np.ndarray, known: np.ndarray, shapes: tuple[str, ...]
) -> tuple[str, float]:
    """The shape whose antialiased outline best matches the region's coverage (inside ``mask``) where the
    image shows it (``known``: not under another object), over the allowed rotations, two radii (the
    region's equal-area one, and its named size's, which an occluded object keeps) and two centres (the
    region's box centre, and the one that puts the outline's centroid on the region's). Returns the shape
    and its fit in [0, 1] (1 - L1 / total coverage, over the known pixels)."""
    side = mask.shape[0]
    ys, xs = np.nonzero(mask)
    weights = coverage_map[ys, xs]
    box_center = np.array([(xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2])
    centroid = np.array([(weights * (xs + 0.5)).sum(), (weights * (ys + 0.5)).sum()]) / weights.sum()
    own = math.sqrt(weights.sum() / math.pi)
    named = min((SIZES[s] / 2 * side for s in SIZES), key=lambda r: abs(math.log(own / r)))
    span = math.ceil(2.6 * max(own, named)) + 4
    x0, y0 = round(box_center[0] - span / 2), round(box_center[1] - span / 2)
    target, weight = np.zeros((span, span)), np.zeros((span, span))
    top, left = max(y0, 0), max(x0, 0)
    bottom, right = min(y0 + span, side), min(x0 + span, side)
    target[top - y0 : bottom - y0, left - x0 : right - x0] = np.where(mask, coverage_map, 0.0)[top:bottom, left:right]
    weight[top - y0 : bottom - y0, left - x0 : right - x0] = known[top:bottom, left:right]

    def fit(shape: str, rotation: float, radius: float, center: np.ndarray) -> float:
        covered = coverage(shape, (float(center[0]), float(center[1])), radius, rotation, (x0, y0, span))
        error = (np.abs(covered - target) * weight).sum()
        return 1 - float(error / max(((covered + target) * weight).sum(), 1e-9))

    scores: dict[str, tuple[float, float, float, np.ndarray]] = {}  # shape -> (fit, rotation, radius, centre)
    radii = (own,) if abs(own / named - 1) < 0.02 else (own, named)  # an unoccluded object: one radius will do
    for shape in shapes:
        for rotation in ROTATIONS:
            offset = _centroid_offset(shape, rotation)
            for radius in radii:
                centred = centroid - offset * radius
                centers = (box_center,) if np.abs(centred - box_center).max() < 0.2 else (box_center, centred)
                for center in centers:
                    score = fit(shape, rotation, radius, center)
                    if shape not in scores or score > scores[shape][0]:
                        scores[shape] = (score, rotation, radius, center)
    best = max(scores, key=lambda name: scores[name][0])
    best_fit = scores[best][0]
    return best, best_fit


def is_rim(pixels: np.ndarray, seed: np.ndarray, colour: int, interior: np.ndarray, alpha: np.ndarray) -> bool:
    """Whether a region is the blurred edge of a larger neighbour of another colour rather than an object:
    its pixels lie on the blend from the background to that neighbour's colour, short of it (a resized
    orange object wears a brown ring, brown being half orange), and it is thin (almost no core), where a
    real object of that colour beside the neighbour is solid."""
    if erode(seed).sum() >= 0.25 * seed.sum():
        return False
    bg = background_colour(pixels)
    ys, xs = np.nonzero(seed)
    values = pixels[ys, xs].astype(np.float64)
    for other in np.unique(interior[dilate(seed, 1) & ~seed]):
        if other < 0 or other == colour or (interior == other).sum() <= seed.sum():
            continue
        share = alpha[ys, xs, other]
        residual = np.sqrt(((values - bg - share[:, None] * (_PALETTE[other] - bg)) ** 2).sum(-1))
        if residual.mean() < RIM_RESIDUAL and share.mean() < 0.9:
            return True
    return False


def read_scene(image: Image.Image | np.ndarray, shapes: tuple[str, ...] = SHAPES) -> list[ReadObject]:
    """The objects of a square RGB ShapesWorld-style image, largest first."""
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    side = pixels.shape[0]
    small = _area_fraction("small") * side * side
    interior, alpha = colour_fit(pixels)
    occupied = (interior >= 0) | (alpha.max(-1) >= 0.5)
    found = []
    for colour, seed in object_seeds(pixels, interior, max(2, int(FLAT_SHARE * small))):
        coverage_map = np.where(interior == colour, 1.0, alpha[..., colour])
        # The seed's antialiased rim: pixels next to it that are at least half its colour, and no other
        # object's interior.
        mask = seed | (dilate(seed, 1) & (coverage_map >= 0.5) & (interior < 0))
        area = int(mask.sum())
        if area < MIN_AREA_SHARE * small or is_rim(pixels, seed, colour, interior, alpha):
            continue
        known = ~(occupied & ~mask)  # pixels another object shows are no evidence either way
        shape, fit = classify_shape(coverage_map, mask, known, shapes)
        size = min(SIZES, key=lambda s: abs(math.log(area / (side * side) / _area_fraction(s))))
        ys, xs = np.nonzero(mask)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        found.append(ReadObject(shape, _NAMES[colour], size, box, area, fit))
    return sorted(found, key=lambda o: -o.area)
