"""What every kind's layout shares: a page's type style, what a drawn page hands back, paragraph wrapping.

A kind module (receipt, invoice, form, letter, table) is one function ``draw(rng, style, config) -> Drawn``.
It owns its content and geometry; ``Drawn`` carries the canvas plus the ground truth that only the layout
knows (which lines are table cells, which values fill which fields, which questions the page can answer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vlmkit.data.docworld.canvas import Align, Canvas, Table
from vlmkit.data.docworld.config import REFERENCE_WIDTH, DocWorldConfig
from vlmkit.data.docworld.fonts import Font, font

A4 = 2**0.5
"""Height / width of letters, forms, invoices and tables."""

FAMILY_WEIGHTS: dict[str, dict[str, float]] = {
    "receipt": {"mono": 0.6, "sans": 0.4},
    "default": {"sans": 0.45, "serif": 0.4, "mono": 0.15},
}
"""Per kind, how often each face is the page's face: receipts are mostly printed by monospaced printers."""


@dataclass(frozen=True)
class Style:
    """A page's typography: one face family, one body cap height (px), one ink grey."""

    family: str
    cap: float
    ink: int

    def font(self, scale: float = 1.0, style: str = "regular", family: str | None = None) -> Font:
        return font(family or self.family, style, self.cap * scale)

    def pitch(self, scale: float = 1.0) -> float:
        """Baseline-to-baseline distance of text at ``scale``."""
        return self.cap * scale * 2.0


def sample_style(rng: np.random.Generator, config: DocWorldConfig, kind: str) -> Style:
    weights = FAMILY_WEIGHTS.get(kind, FAMILY_WEIGHTS["default"])
    families = sorted(weights)
    p = np.array([weights[f] for f in families])
    family = families[int(rng.choice(len(families), p=p / p.sum()))]
    low, high = config.text_size
    cap = float(rng.uniform(low, high)) * config.page_width / REFERENCE_WIDTH
    return Style(family, cap, int(rng.integers(0, 60)))


@dataclass
class Drawn:
    """A drawn page and its ground truth: ``questions`` are (question, answer, type) candidates, each answer
    printed verbatim on one line; the page keeps a few of them."""

    canvas: Canvas
    fields: dict[str, str] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    questions: list[tuple[str, str, str]] = field(default_factory=list)


def wrap(chunks: list[str], font: Font, width: float) -> list[str]:
    """Greedy line breaking of ``chunks`` (runs of words that must stay on one line, such as a date or a
    name a question asks about) into lines no wider than ``width`` (a chunk wider than that gets a line of
    its own)."""
    lines: list[str] = []
    current = ""
    for chunk in chunks:
        trial = f"{current} {chunk}" if current else chunk
        if current and font.getlength(trial) > width:
            lines.append(current)
            current = chunk
        else:
            current = trial
    if current:
        lines.append(current)
    return lines


def key_value(
    canvas: Canvas,
    at: tuple[float, float, float],
    label: str,
    value: str,
    fonts: tuple[Font, Font],
    align_value: Align = "left",
) -> int:
    """A label at ``at[0]`` and its value at ``at[1]`` on baseline ``at[2]``, as two lines (the gap between
    them is a column gap, not a space); returns the value's handle."""
    x, value_x, baseline = at
    canvas.write(x, baseline, label, fonts[0])
    return canvas.write(value_x, baseline, value, fonts[1], align=align_value)
