"""Pictures of results, for a person to look at: rows of labelled thumbnails.

Retrieval results, zero-shot predictions and generated captions all come down to "a query, then
images with a line of text under each"; ``result_sheet`` draws that as one PNG.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from vlmkit.files import atomic_open
from vlmkit.processing.images import ImageSource, load_image


@dataclass
class Tile:
    image: ImageSource
    caption: str = ""
    highlight: bool = False  # drawn with a green frame (e.g. the correct result)


@dataclass
class Row:
    title: str
    tiles: Sequence[Tile]


def result_sheet(rows: Sequence[Row], tile: int = 160, caption_lines: int = 3) -> Image.Image:
    """One row per query: its title on the left (if any row has one), its tiles to the right, captions under."""
    font = ImageFont.load_default()
    line_height = 12
    title_width = 220 if any(row.title for row in rows) else 0
    columns = max((len(row.tiles) for row in rows), default=1)
    row_height = tile + caption_lines * line_height + 16
    sheet = Image.new("RGB", (title_width + columns * (tile + 8) + 8, len(rows) * row_height + 8), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        top = 8 + r * row_height
        for i, line in enumerate(textwrap.wrap(row.title, 34)[:8]):
            draw.text((8, top + i * line_height), line, fill="black", font=font)
        for c, item in enumerate(row.tiles):
            left = title_width + c * (tile + 8)
            thumb = load_image(item.image).copy()
            thumb.thumbnail(
                (tile, tile), Image.Resampling.NEAREST if max(thumb.size) <= tile // 2 else Image.Resampling.BICUBIC
            )
            if max(thumb.size) < tile:  # enlarge tiny images (64 px) so a person can see them
                scale = tile / max(thumb.size)
                thumb = thumb.resize(
                    (round(thumb.width * scale), round(thumb.height * scale)), Image.Resampling.NEAREST
                )
            sheet.paste(thumb, (left, top))
            if item.highlight:
                draw.rectangle(
                    (left - 3, top - 3, left + thumb.width + 2, top + thumb.height + 2), outline=(0, 170, 0), width=3
                )
            for i, line in enumerate(textwrap.wrap(item.caption, 26)[:caption_lines]):
                draw.text((left, top + tile + 4 + i * line_height), line, fill="black", font=font)
    return sheet


def save_png(image: Image.Image, path: str | os.PathLike[str]) -> None:
    with atomic_open(path, "wb") as handle:
        image.save(handle, format="PNG", optimize=True)
