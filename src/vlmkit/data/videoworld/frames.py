"""A clip's frames: each one a ShapesWorld rendering of the objects as they are at that frame.

The renderer draws opaque objects only, so a fading object (an appearance or a disappearance under way) is
drawn by rendering the frame with and without it and mixing the two by its opacity: exact alpha blending
over whatever lies beneath, textured backgrounds and other objects included. At most one object fades at a
time, because events never overlap. A frame is acceptable when every object on it shows at least
``1 - max_overlap`` of its own area (the visible masks of the rendering with it drawn).
"""

from __future__ import annotations

import numpy as np

from vlmkit.data.shapesworld.geometry import rasterize
from vlmkit.data.shapesworld.render import render_scene
from vlmkit.data.shapesworld.scene import Scene
from vlmkit.data.videoworld.config import VideoWorldConfig
from vlmkit.data.videoworld.script import Clip

MIN_VISIBLE_PIXELS = 4


def render_frame(clip: Clip, frame: int, config: VideoWorldConfig) -> np.ndarray | None:
    """Frame ``frame`` as uint8 RGB (side x side x 3), or None if an object on it is hidden too much."""
    side = config.image_size
    states = [clip.state(i, frame) for i in clip.on_screen(frame)]
    drawn = Scene(tuple(obj for obj, _ in states), clip.background)
    rendering = render_scene(drawn, side, config.supersample)
    for (obj, _), mask in zip(states, rendering.masks, strict=True):
        area = int((rasterize([obj.outline()], side) > 0).sum())
        visible = int(mask.sum())
        if visible < MIN_VISIBLE_PIXELS or visible < (1.0 - config.max_overlap) * area:
            return None
    pixels = np.asarray(rendering.image)
    fading = [alpha for _, alpha in states if alpha < 1.0]
    if not fading:
        return pixels
    solid = Scene(tuple(obj for obj, alpha in states if alpha == 1.0), clip.background)
    under = np.asarray(render_scene(solid, side, config.supersample).image).astype(np.float64)
    mixed = fading[0] * pixels.astype(np.float64) + (1.0 - fading[0]) * under
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def render_clip(clip: Clip, config: VideoWorldConfig) -> list[np.ndarray] | None:
    """Every frame of ``clip``, or None as soon as one is unacceptable (the caller draws another clip)."""
    frames = []
    for index in range(clip.frames):
        pixels = render_frame(clip, index, config)
        if pixels is None:
            return None
        frames.append(pixels)
    return frames
