"""A contact sheet of a dataset folder: images enlarged, masks tinted, boxes drawn, first caption below.

Meant for a person checking that annotations sit where they should, so everything drawn comes from
the records (boxes and RLE masks as stored), not from the generator.
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

OVERLAY = [(0, 255, 255), (255, 0, 255), (255, 255, 0), (0, 255, 0), (255, 255, 255), (255, 128, 0)]
MIN_TILE = 192
CAPTION_LINES = 5
LINE_HEIGHT = 13
MASK_ALPHA = 0.2
EDGE_ALPHA = 0.85


def _wrap(text: str, draw: ImageDraw.ImageDraw, font: Any, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _edge(mask: np.ndarray) -> np.ndarray:
    """Mask pixels with a 4-neighbour outside the mask: the outline, drawn strongly so the lightly
    tinted inside still shows the object's true colour."""
    padded = np.pad(mask, 1)
    inside = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inside


def draw_tile(record: dict[str, Any], dataset_dir: Path, font: Any) -> Image.Image:
    """One record: enlarged image with tinted, outlined masks and boxes over a wrapped first caption."""
    with Image.open(dataset_dir / record["image"]) as opened:
        image = opened.convert("RGB")
    factor = max(1, math.ceil(MIN_TILE / image.width))
    pixels = np.asarray(image.resize((image.width * factor, image.height * factor), Image.NEAREST), dtype=np.float64)
    objects = record.get("objects", [])
    for k, obj in enumerate(objects):
        if "mask" in obj:
            mask = rle_decode(obj["mask"]).repeat(factor, axis=0).repeat(factor, axis=1)
            color = np.array(OVERLAY[k % len(OVERLAY)], dtype=np.float64)
            edge = _edge(mask)
            inner = mask & ~edge
            pixels[inner] = (1 - MASK_ALPHA) * pixels[inner] + MASK_ALPHA * color
            pixels[edge] = (1 - EDGE_ALPHA) * pixels[edge] + EDGE_ALPHA * color
    tile = Image.new("RGB", (image.width * factor, image.height * factor + CAPTION_LINES * LINE_HEIGHT + 6), "white")
    tile.paste(Image.fromarray(pixels.round().astype(np.uint8)), (0, 0))
    draw = ImageDraw.Draw(tile)
    for k, obj in enumerate(objects):
        x0, y0, x1, y1 = (v * factor for v in obj["box"])
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=OVERLAY[k % len(OVERLAY)], width=1)
    caption = (record.get("captions") or [""])[0]
    lines = _wrap(caption, draw, font, tile.width - 6)[:CAPTION_LINES]
    for i, line in enumerate(lines):
        draw.text((3, image.height * factor + 3 + i * LINE_HEIGHT), line, fill="black", font=font)
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
