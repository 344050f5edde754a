"""Located objects drawn over their image: a translucent mask, a box and a label per object.

Each label keeps one colour, so "two stars and a circle" shows two boxes of one colour and one of
another. Small images (ShapesWorld's 64 px) are enlarged first, with nearest-neighbour so the pixels the
model saw stay visible, until the labels are readable.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vlmkit.processing.images import ImageSource, load_image
from vlmkit.tasks.ground import GroundedObject

MASK_ALPHA = 110
MIN_SIDE = 384
PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
)


def label_colour(label: str) -> tuple[int, int, int]:
    """A colour fixed by the label's text (the same in every picture)."""
    return PALETTE[zlib.crc32(label.encode()) % len(PALETTE)]


def draw_objects(image: ImageSource, objects: Sequence[GroundedObject]) -> Image.Image:
    """``image`` with each object's mask (translucent), box and label drawn on an RGB copy."""
    base = load_image(image).convert("RGBA")
    scale = max(1, -(-MIN_SIDE // max(base.size)))
    if scale > 1:
        base = base.resize((base.width * scale, base.height * scale), Image.Resampling.NEAREST)
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    font = ImageFont.load_default()
    for item in objects:
        colour = label_colour(item.label)
        if item.mask is not None:
            mask = np.kron(np.asarray(item.mask, dtype=bool), np.ones((scale, scale), dtype=bool))
            tint = np.zeros((*mask.shape, 4), dtype=np.uint8)
            tint[mask] = (*colour, MASK_ALPHA)
            overlay = Image.alpha_composite(overlay, Image.fromarray(tint, "RGBA"))
            draw = ImageDraw.Draw(overlay)
        x0, y0, x1, y1 = (v * scale for v in item.box)
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=(*colour, 255), width=2)
        text = item.label if item.score is None else f"{item.label} {item.score:.2f}"
        if text:
            left, top, right, bottom = draw.textbbox((x0 + 3, y0 + 1), text, font=font)
            draw.rectangle((left - 2, top - 1, right + 2, bottom + 1), fill=(*colour, 220))
            draw.text((x0 + 3, y0 + 1), text, fill=(0, 0, 0, 255), font=font)
    return Image.alpha_composite(base, overlay).convert("RGB")
