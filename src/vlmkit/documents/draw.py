"""A page with what was read drawn over it: each line's box tinted by confidence, each word outlined.

Green is a confident reading, red a doubtful one, so a person sees at a glance where OCR struggled.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from vlmkit.documents.types import Page

TINT_ALPHA = 60


def _colour(confidence: float) -> tuple[int, int, int]:
    confidence = min(max(confidence, 0.0), 1.0)
    return (round(255 * (1 - confidence)), round(180 * confidence), 40)


def draw_regions(image: Image.Image, page: Page) -> Image.Image:
    """``image`` (the page as read) with ``page``'s lines and words drawn on a copy."""
    base = image.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    width = max(1, round(max(base.size) / 800))
    for line in page.lines:
        colour = _colour(line.confidence)
        draw.rectangle(line.box, fill=(*colour, TINT_ALPHA))
        for word in line.words:
            draw.rectangle(word.box, outline=(*_colour(word.confidence), 255), width=width)
    return Image.alpha_composite(base, overlay).convert("RGB")
