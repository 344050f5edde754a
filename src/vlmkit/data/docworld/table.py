"""Data tables: a title and subtitle, a grid with a shaded header row and a label column, a footnote.

Values are plausible for their measure (headcounts in the hundreds, visitors in the thousands) and a
"Total" column, when there is one, is the sum of its row, so a model that reads the table can check itself.
Each cell is its own line; header cells are row 0.
"""

from __future__ import annotations

import numpy as np

from vlmkit.data.docworld import values, vocab
from vlmkit.data.docworld.canvas import Canvas, Table
from vlmkit.data.docworld.config import DocWorldConfig
from vlmkit.data.docworld.layout import A4, Drawn, Style

MAX_COLUMNS = 5
"""Numeric columns at most (a total included), so the widest number fits its column at the largest text."""


def _numbers(rng: np.random.Generator, measure: str, rows: int, columns: int) -> tuple[list[list[str]], np.ndarray]:
    """Printed cells and their values (rows x columns) for ``measure``."""
    low, high, percent = vocab.TABLE_MEASURES[measure]
    if percent:
        numbers = np.round(rng.uniform(low, high, size=(rows, columns)), 1)
        return [[f"{v:.1f}%" for v in row] for row in numbers], numbers
    numbers = rng.integers(int(low), int(high) + 1, size=(rows, columns))
    return [[f"{int(v):,}" for v in row] for row in numbers], numbers


def draw(rng: np.random.Generator, style: Style, config: DocWorldConfig) -> Drawn:
    width = config.page_width
    margin = round(width * 0.08)
    right = width - margin
    canvas = Canvas(width, round(width * A4), style.ink)
    pitch = style.pitch()
    page = Drawn(canvas)

    header = values.pick(rng, sorted(vocab.TABLE_ROWS))
    measure = values.pick(rng, sorted(vocab.TABLE_MEASURES))
    percent = vocab.TABLE_MEASURES[measure][2]
    column_set = values.pick(rng, vocab.TABLE_COLUMNS)
    columns = list(column_set[: int(rng.integers(3, min(len(column_set), MAX_COLUMNS) + 1))])
    labels = values.sample(rng, vocab.TABLE_ROWS[header], int(rng.integers(4, len(vocab.TABLE_ROWS[header]) + 1)))
    cells, numbers = _numbers(rng, measure, len(labels), len(columns))
    if not percent and len(columns) < MAX_COLUMNS and rng.random() < 0.5:
        columns.append("Total")
        numbers = np.concatenate([numbers, numbers.sum(axis=1, keepdims=True)], axis=1)
        cells = [[*row, f"{int(total):,}"] for row, total in zip(cells, numbers[:, -1], strict=True)]

    title = f"{measure} by {header.lower()}"
    year = int(rng.integers(2018, 2027))
    y = margin + style.cap * 2
    canvas.write(margin, y, title, style.font(1.5, "bold"))
    y += style.pitch(1.2)
    canvas.write(margin, y, f"Fiscal year {year}", style.font(style="italic"))
    y += pitch * 2

    table = _grid(
        canvas, style, (margin, right, y), [header, *columns], [[a, *r] for a, r in zip(labels, cells, strict=True)]
    )
    page.tables.append(table)
    y += style.pitch(1.1) * (len(labels) + 1) + pitch
    source = values.pick(rng, vocab.TABLE_SOURCES)
    updated = values.date_text(values.day(rng), values.pick(rng, values.DATE_FORMATS))
    small = style.font(0.9)
    canvas.write(margin, y, source, small)
    canvas.write(margin, y + pitch * 0.8, f"Last updated: {updated}", small)

    page.fields = {"title": title, "year": str(year), "last updated": updated}
    picks = rng.choice(len(labels) * len(columns), size=3, replace=False)
    page.questions = [
        (f"What is the value in row {labels[i]} under column {columns[j]}?", cells[i][j], "table lookup")
        for i, j in (divmod(int(p), len(columns)) for p in picks)
    ]
    page.questions += [
        ("What is the title of the table?", title, "title"),
        ("When was the table last updated?", updated, "date"),
    ]
    column = int(rng.integers(len(columns)))
    best = numbers[:, column]
    if (best == best.max()).sum() == 1:
        question = f"Which {header.lower()} has the highest value under column {columns[column]}?"
        page.questions.append((question, labels[int(best.argmax())], "table max"))
    return page


def _grid(
    canvas: Canvas, style: Style, at: tuple[float, float, float], head: list[str], rows: list[list[str]]
) -> Table:
    """Header row ``head`` and ``rows`` from baseline ``at[2]``, between ``at[0]`` and ``at[1]``: the label
    column left-aligned, numbers right-aligned in equal columns, rules under every row."""
    left, right, top = at
    body, bold = style.font(), style.font(style="bold")
    label_width = max([canvas.measure(head[0], bold)] + [canvas.measure(row[0], body) for row in rows])
    first_right = left + label_width + style.cap * 2
    step = (right - first_right) / (len(head) - 1)
    pad = style.cap * 0.4
    canvas.shade((left - pad, top - style.cap * 1.5, right + pad, top + style.cap * 0.7))
    table = Table(header_rows=1)
    row_pitch = style.pitch(1.1)
    for r, texts in enumerate([head, *rows]):
        y = top + row_pitch * r
        font = bold if r == 0 else body
        table.cells.append((r, 0, canvas.write(left, y, texts[0], font)))
        for c, text in enumerate(texts[1:], 1):
            table.cells.append((r, c, canvas.write(first_right + step * c, y, text, font, "right")))
        canvas.rule(left, right, y + style.cap * 0.7)
    return table
