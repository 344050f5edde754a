"""A page being drawn, which keeps the exact box of every word it draws.

Each word is drawn on its own, at the position the whole line's typesetting gives it, and its box is the
bounding box of exactly the pixels that draw changed, so a box is tight to its ink and can never drift from
it. ``write`` puts one *line* on the page: a run of words separated by single spaces. Text separated by a
wider gap (a form's label and its value, a receipt's item and its price, each table cell) is written as
separate lines; layouts put the lines of one visual row on one shared baseline.

Reading order, the one rule every kind follows: lines by baseline, top to bottom, and lines sharing a
baseline left to right. ``page`` sorts by exactly that, so no layout can get it wrong by drawing out of order.

Pages are grayscale ("L"): scanned document collections (RVL-CDIP, DocVQA, FUNSD) are mostly grayscale, and
one channel makes drawing, degrading and encoding three times cheaper. Rules and shading are drawn far lighter
than any text, so dark pixels on a page are text and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from vlmkit.data.docworld.fonts import Font
from vlmkit.documents.types import Box, Line, Page, Word

RULE_SHADE = 185
"""Grey of table rules, separators and form underlines."""
FILL_SHADE = 232
"""Grey of shaded table headers."""

Align = Literal["left", "right", "center"]


class Overflow(Exception):
    """The layout does not fit at this text size: a word would leave the page or lie over another word."""


@dataclass(frozen=True)
class _Written:
    baseline: int
    x: int
    words: tuple[Word, ...]


@dataclass
class Table:
    """A table's cells as (row, column, handle of the line ``write`` returned); ``header_rows`` say how many of
    the first rows are column headers."""

    header_rows: int
    cells: list[tuple[int, int, int]] = field(default_factory=list)


class Canvas:
    """A white ``width`` x ``height`` grayscale page and the lines written on it, with ``ink`` the text grey."""

    def __init__(self, width: int, height: int, ink: int) -> None:
        self.image = Image.new("L", (width, height), 255)
        self.draw = ImageDraw.Draw(self.image)
        self.ink = ink
        self._lines: list[_Written] = []

    @property
    def width(self) -> int:
        return self.image.width

    @staticmethod
    def measure(text: str, font: Font) -> float:
        """Advance width of ``text`` in pixels (where the next text may start)."""
        return font.getlength(text)

    def write(
        self, x: float, baseline: float, text: str, font: Font, align: Align = "left", ink: int | None = None
    ) -> int:
        """Draw ``text`` with its left edge (or right edge, or centre) at ``x`` on ``baseline``; return a handle."""
        words = text.split(" ")
        if not text or "" in words:
            raise ValueError(f"a line is words separated by single spaces, got {text!r}")
        if align != "left":
            x -= font.getlength(text) / (2 if align == "center" else 1)
        left, base = round(x), round(baseline)
        placed, start = [], 0
        for word in words:
            at = (left + round(font.getlength(text[:start])), base)
            placed.append(Word(word, self._draw_word(at, word, font, self.ink if ink is None else ink)))
            start += len(word) + 1
        self._lines.append(_Written(base, left, tuple(placed)))
        return len(self._lines) - 1

    def _draw_word(self, at: tuple[int, int], word: str, font: Font, ink: int) -> Box:
        """Draw one word and return the box of exactly the pixels it changed: ``textbbox`` alone spans the
        advance width and reaches down to the baseline ("****" and "no." would get loose boxes), so the
        region around it is compared before and after drawing, which also leaves out shading underneath."""
        x0, y0, x1, y1 = self.draw.textbbox(at, word, font=font, anchor="ls")
        if x0 < 0 or y0 < 0 or x1 > self.image.width or y1 > self.image.height:
            raise Overflow(f"{word!r} at {at} leaves the {self.image.width} x {self.image.height} page")
        pad = max(2, round(font.size / 2))  # italic and kerned glyphs may reach past the advance box
        region = (x0 - pad, y0 - pad, x1 + pad, y1 + pad)
        before = self.image.crop(region)
        self.draw.text(at, word, fill=ink, font=font, anchor="ls")
        changed = ImageChops.difference(before, self.image.crop(region)).getbbox()
        if changed is None:
            raise ValueError(f"{word!r} left no ink on the page")
        left, top = region[0], region[1]
        return (float(left + changed[0]), float(top + changed[1]), float(left + changed[2]), float(top + changed[3]))

    def rule(self, x0: float, x1: float, y: float, thickness: int = 1) -> None:
        """A light horizontal rule (a separator, a table line, a form's underline)."""
        self.draw.rectangle((round(x0), round(y), round(x1), round(y) + thickness - 1), fill=RULE_SHADE)

    def shade(self, box: Box) -> None:
        """A light grey background (a table header) drawn before the text on it."""
        self.draw.rectangle(tuple(round(v) for v in box), fill=FILL_SHADE)

    def crop_height(self, height: int) -> None:
        """Cut the page to ``height`` (receipts are as long as their contents); no text may be below it."""
        lowest = max((w.box[3] for line in self._lines for w in line.words), default=0.0)
        if lowest > height:
            raise ValueError(f"cropping to {height} px would cut text reaching down to {lowest}")
        self.image = self.image.crop((0, 0, self.image.width, height))
        self.draw = ImageDraw.Draw(self.image)

    def check_overlaps(self) -> None:
        """Raise ``Overflow`` when two words overlap by more than a pixel each way (columns ran into each other)."""
        boxes = np.array([word.box for line in self._lines for word in line.words]).reshape(-1, 4)
        x0, y0, x1, y1 = (boxes[:, None, k] for k in range(4))
        wide = np.minimum(x1, x1.T) - np.maximum(x0, x0.T) > 1
        tall = np.minimum(y1, y1.T) - np.maximum(y0, y0.T) > 1
        clash = np.triu(wide & tall, k=1)
        if clash.any():
            raise Overflow(f"{int(clash.sum())} pair(s) of words overlap")

    def page(self, size: tuple[int, int], move: Callable[[Box], Box]) -> tuple[Page, list[int]]:
        """The ground truth for the final image of ``size``: every box passed through ``move`` (the scan's
        geometry) and clipped to the image, lines in reading order; plus, per handle, its line's index."""
        order = sorted(range(len(self._lines)), key=lambda i: (self._lines[i].baseline, self._lines[i].x))
        width, height = size

        def place(box: Box) -> Box:
            x0, y0, x1, y1 = move(box)
            return (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))

        lines = tuple(Line(tuple(Word(w.text, place(w.box)) for w in self._lines[i].words)) for i in order)
        index = [0] * len(order)
        for position, handle in enumerate(order):
            index[handle] = position
        return Page(width, height, lines, "truth"), index
