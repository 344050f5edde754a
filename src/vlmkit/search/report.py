"""Search results a person can look at: a self-contained HTML page and a PNG contact sheet.

Both carry their query as a title (the text, the query image's name, the tags) and show each hit's
thumbnail with its rank, score and name (plus the timestamp of a video frame).
The HTML embeds thumbnails as base64 JPEG so the single file can be mailed or opened anywhere; a hit
whose file can no longer be read is shown as a grey tile rather than failing the report.
"""

from __future__ import annotations

import base64
import html
import io
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from vlmkit.errors import InputError
from vlmkit.files import atomic_write_text
from vlmkit.processing.images import load_image
from vlmkit.search.store import Hit
from vlmkit.search.video import frame_at
from vlmkit.visualize import Row, Tile, result_sheet, save_png

THUMBNAIL = 192
COLUMNS = 5
TITLE_SIZE = 16  # pixels: the PNG's title font


def thumbnail(hit: Hit, side: int = THUMBNAIL) -> Image.Image:
    """The hit's image (or video frame) fitted in ``side`` x ``side``; grey when unreadable."""
    try:
        image = frame_at(hit.path, hit.frame_time) if hit.frame_time is not None else load_image(hit.path)
    except InputError:
        return Image.new("RGB", (side, side), (200, 200, 200))
    image.thumbnail((side, side))
    return image


def _label(hit: Hit) -> str:
    name = Path(hit.path).name
    return f"{name} @ {hit.frame_time:.1f}s" if hit.frame_time is not None else name


def write_html(hits: Sequence[Hit], path: str | os.PathLike[str], title: str) -> Path:
    """A single HTML file with the hits' thumbnails, scores and full paths."""
    cards = []
    for rank, hit in enumerate(hits, start=1):
        buffer = io.BytesIO()
        thumbnail(hit).save(buffer, format="JPEG", quality=85)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        cards.append(
            f'<figure><img src="data:image/jpeg;base64,{data}" alt="{html.escape(_label(hit))}">'
            f'<figcaption>#{rank} &middot; {hit.score:.3f}<br><span title="{html.escape(hit.path)}">'
            f"{html.escape(_label(hit))}</span></figcaption></figure>"
        )
    page = (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:1.5em}main{display:flex;flex-wrap:wrap;gap:12px}"
        f"figure{{margin:0;width:{THUMBNAIL}px}}img{{max-width:{THUMBNAIL}px;max-height:{THUMBNAIL}px}}"
        "figcaption{font-size:12px;overflow-wrap:anywhere}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{len(hits)} results</p><main>{''.join(cards)}</main></body></html>\n"
    )
    atomic_write_text(path, page)
    return Path(path)


def titled(sheet: Image.Image, title: str) -> Image.Image:
    """``sheet`` under a white band with ``title`` in it (wrapped to the sheet's width, at most 3 lines)."""
    font = ImageFont.load_default(TITLE_SIZE)
    per_line = max(8, (sheet.width - 16) // max(1, round(font.getlength("n"))))
    lines = textwrap.wrap(title, per_line)[:3] or [""]
    band = 12 + len(lines) * (TITLE_SIZE + 4)
    out = Image.new("RGB", (sheet.width, sheet.height + band), "white")
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((8, 8 + i * (TITLE_SIZE + 4)), line, fill="black", font=font)
    out.paste(sheet, (0, band))
    return out


def write_png(
    hits: Sequence[Hit], path: str | os.PathLike[str], columns: int = COLUMNS, *, title: str | None = None
) -> Path:
    """A grid of thumbnails, each captioned with rank, score and file name, under ``title`` when given."""
    if not hits:
        raise InputError("no results to draw")
    tiles = [Tile(thumbnail(hit), f"#{rank}  {hit.score:.3f}  {_label(hit)}") for rank, hit in enumerate(hits, 1)]
    rows = [Row("", tiles[start : start + columns]) for start in range(0, len(tiles), columns)]
    sheet = result_sheet(rows, tile=THUMBNAIL, caption_lines=2)
    save_png(titled(sheet, title) if title else sheet, path)
    return Path(path)
