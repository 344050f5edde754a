"""A contact sheet of a dataset folder: images enlarged, masks outlined, boxes drawn, first caption below.

Meant for a person checking that annotations sit where they should, so everything drawn comes from
the records (boxes and RLE masks as stored), not from the generator. Annotations are drawn only on
pixels outside every object mask: an object's own pixels are never tinted or covered, so its colour reads
as in the image (a tinted red circle no longer looks orange, a tinted blue one purple).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vlmkit.data.records import read_records
from vlmkit.data.shapesworld.masks import rle_decode
from vlmkit.errors import InputError
from vlmkit.files import atomic_open

# Annotation colours, one per object in turn, drawn around objects and never over them (no white: a white
# outline next to a white shape would read as part of it).
OVERLAY = [(255, 0, 255), (0, 255, 0), (0, 255, 255), (255, 255, 0), (255, 96, 0), (160, 160, 255)]
MIN_TILE = 192
CAPTION_LINES = 5
LINE_HEIGHT = 13
GAP = 1  # dark pixels between a mask and its outline, so an outline never merges with a same-coloured shape
OUTLINE = 2  # outline pixels beyond the gap (in the enlarged image)


def _wrap(text: str, draw: ImageDraw.ImageDraw, font: Any, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _ring(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` 4-neighbour steps outside ``mask``: an outline that leaves the mask untouched."""
    grown = mask.copy()
    for _ in range(width):
        padded = np.pad(grown, 1)
        grown = grown | padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
    return grown & ~mask


def draw_tile(record: dict[str, Any], dataset_dir: Path, font: Any) -> Image.Image:
    """One record: enlarged image with outlined masks and boxes over a wrapped first caption.

    Outlines and boxes cover background pixels only (none inside any object's mask), so every object keeps
    its exact colours; records without masks get their boxes drawn as they are.
    """
    with Image.open(dataset_dir / record["image"]) as opened:
        image = opened.convert("RGB")
    factor = max(1, math.ceil(MIN_TILE / image.width))
    width, height = image.width * factor, image.height * factor
    pixels = np.array(image.resize((width, height), Image.NEAREST))
    objects = record.get("objects", [])
    masks = {
        k: rle_decode(obj["mask"]).astype(bool).repeat(factor, axis=0).repeat(factor, axis=1)
        for k, obj in enumerate(objects)
        if "mask" in obj
    }
    occupied = np.zeros((height, width), dtype=bool)
    for mask in masks.values():
        occupied |= mask
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for k, obj in enumerate(objects):  # one pixel outside the box, so the box edge never covers the object
        x0, y0, x1, y1 = (v * factor for v in obj["box"])
        draw.rectangle([x0 - 1, y0 - 1, x1, y1], outline=OVERLAY[k % len(OVERLAY)] + (255,), width=1)
    marks = np.asarray(layer)
    for k, mask in masks.items():
        gap = _ring(mask, GAP)
        pixels[(_ring(mask, GAP + OUTLINE) & ~gap) & ~occupied] = OVERLAY[k % len(OVERLAY)]
        pixels[gap & ~occupied] = 0
    drawn = (marks[..., 3] > 0) & ~occupied
    pixels[drawn] = marks[..., :3][drawn]
    tile = Image.new("RGB", (width, height + CAPTION_LINES * LINE_HEIGHT + 6), "white")
    tile.paste(Image.fromarray(pixels), (0, 0))
    draw = ImageDraw.Draw(tile)
    caption = (record.get("captions") or [""])[0]
    lines = _wrap(caption, draw, font, tile.width - 6)[:CAPTION_LINES]
    for i, line in enumerate(lines):
        draw.text((3, height + 3 + i * LINE_HEIGHT), line, fill="black", font=font)
    return tile


def draw_grid(
    dataset_dir: str | os.PathLike[str],
    n: int = 16,
    out_path: str | os.PathLike[str] = "grid.png",
    columns: int | None = None,
) -> Path:
    """Save a grid of the first ``n`` records of ``dataset_dir`` (square by default) to ``out_path``."""
    folder = Path(dataset_dir)
    font = ImageFont.load_default()
    tiles = [draw_tile(r.to_dict(), folder, font) for r in read_records(folder).records[:n]]
    if not tiles:
        raise InputError(f"{folder}: holds no records to draw")
    columns = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    gap = 4
    width, height = max(t.width for t in tiles), max(t.height for t in tiles)
    sheet = Image.new("RGB", (columns * (width + gap) - gap, rows * (height + gap) - gap), (200, 200, 200))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * (width + gap), (i // columns) * (height + gap)))
    with atomic_open(out_path, "wb") as handle:
        sheet.save(handle, format="PNG", optimize=True)
    return Path(out_path)
