"""Search results a person can look at: a self-contained HTML page and a PNG contact sheet.

Both carry their query as a title (the text, the query image's name, the tags) and show each hit's
thumbnail with its rank, score and name (plus the timestamp of a video frame, or a document's page).
A hit on a page (or an OCR'd image) whose text matched shows that page with the matching line
highlighted, and the HTML quotes the line. The HTML embeds thumbnails as base64 JPEG so the single
file can be mailed or opened anywhere; a hit whose file can no longer be read is shown as a grey tile
rather than failing the report.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from vlmkit.documents.pages import PDF_DPI, POINTS_PER_INCH, open_pages
from vlmkit.errors import ConfigError, InputError, VlmkitError
from vlmkit.files import atomic_write_text
from vlmkit.processing.images import DEFAULT_MAX_PIXELS, load_image
from vlmkit.search.store import Hit
from vlmkit.search.texts import Box
from vlmkit.search.video import frame_at
from vlmkit.visualize import Row, Tile, result_sheet, save_png

THUMBNAIL = 192
COLUMNS = 5
TITLE_SIZE = 16  # pixels: the PNG's title font
HIGHLIGHT = (255, 196, 0)  # a marker pen's yellow: the matching line's box


def page_image(path: str | Path, page: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Page ``page`` (1-based) of a document in the pixels the indexer read it in, so stored boxes fall on it.

    A PDF page is rendered alone, at ``documents.pages.PDF_DPI`` as the reader renders it (``open_pages``
    would render every page before it); a TIFF's page is its frame. ``max_pixels`` bounds either.
    """
    if Path(path).suffix.lower() != ".pdf":
        pages = open_pages(path, max_pages=sys.maxsize, max_pixels=max_pixels)
        found = next(itertools.islice(pages, page - 1, None), None)
        if found is None:
            raise InputError(f"{path}: has no page {page}")
        return found.image
    try:
        import pypdfium2 as pdfium
    except ImportError:
        raise ConfigError("drawing PDF pages needs pypdfium2: pip install 'vlmkit[docs]'") from None
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as error:
        raise InputError(f"{path}: not a readable PDF ({error})") from None
    try:
        if not 1 <= page <= len(document):
            raise InputError(f"{path}: has no page {page}")
        scale = PDF_DPI / POINTS_PER_INCH
        width, height = document[page - 1].get_size()
        if width * height * scale**2 > max_pixels:
            raise InputError(f"{path}: page {page} exceeds {max_pixels} pixels at {PDF_DPI} dpi")
        return document[page - 1].render(scale=scale).to_pil().convert("RGB")
    finally:
        document.close()


def highlighted(image: Image.Image, box: Box) -> Image.Image:
    """A copy of ``image`` with ``box`` marked: tinted, and outlined thickly enough to show in a thumbnail."""
    base = image.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    width = max(2, round(3 * max(base.size) / THUMBNAIL))  # ~3 px once fitted in a thumbnail
    pad = width + max(2, round(max(base.size) / 300))
    x0, y0, x1, y1 = box
    frame = (x0 - pad, y0 - pad, x1 + pad, y1 + pad)
    ImageDraw.Draw(overlay).rectangle(frame, fill=(*HIGHLIGHT, 90), outline=(*HIGHLIGHT, 255), width=width)
    return Image.alpha_composite(base, overlay).convert("RGB")


def hit_image(hit: Hit) -> Image.Image:
    """What the hit stands for: its image, video frame or document page, with the matching line highlighted."""
    if hit.page is not None:
        image = page_image(hit.path, hit.page)
    elif hit.frame_time is not None:
        image = frame_at(hit.path, hit.frame_time)
    else:
        image = load_image(hit.path)
    return highlighted(image, hit.box) if hit.box is not None else image


def thumbnail(hit: Hit, side: int = THUMBNAIL) -> Image.Image:
    """``hit_image`` fitted in ``side`` x ``side``; grey when unreadable."""
    try:
        image = hit_image(hit)
    except VlmkitError:
        return Image.new("RGB", (side, side), (200, 200, 200))
    image.thumbnail((side, side))
    return image


def _label(hit: Hit) -> str:
    name = Path(hit.path).name
    if hit.page is not None:
        return f"{name} page {hit.page}"
    return f"{name} @ {hit.frame_time:.1f}s" if hit.frame_time is not None else name


def _quoted(hit: Hit) -> str:
    return "" if hit.line is None else f"<br><mark>{html.escape(hit.line)}</mark>"


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
            f"{html.escape(_label(hit))}</span>{_quoted(hit)}</figcaption></figure>"
        )
    page = (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:1.5em}main{display:flex;flex-wrap:wrap;gap:12px}"
        f"figure{{margin:0;width:{THUMBNAIL}px}}img{{max-width:{THUMBNAIL}px;max-height:{THUMBNAIL}px}}"
        "figcaption{font-size:12px;overflow-wrap:anywhere}mark{background:#ffe27a}</style></head><body>"
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
