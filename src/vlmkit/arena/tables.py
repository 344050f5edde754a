"""The leaderboard as a table: aligned text for a terminal, Markdown for a README or an issue, HTML for
the arena's ``/leaderboard`` page. Every form shows the same columns, rounded the same way."""

from __future__ import annotations

import html
from collections.abc import Sequence

from vlmkit.arena.ratings import Rating

HEADERS = ("rank", "model", "rating", "95% CI", "elo", "battles")


def cells(ratings: Sequence[Rating]) -> list[tuple[str, ...]]:
    """Each rating's row as strings: the interval as ``-minus/+plus`` around the rating, as Chatbot Arena
    shows it."""
    return [
        (
            str(rank),
            row.model,
            f"{row.rating:.1f}",
            f"-{row.rating - row.lower:.1f}/+{row.upper - row.rating:.1f}",
            f"{row.elo:.1f}",
            str(row.battles),
        )
        for rank, row in enumerate(ratings, start=1)
    ]


def text_table(ratings: Sequence[Rating]) -> str:
    rows = [HEADERS, *cells(ratings)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(ratings: Sequence[Rating]) -> str:
    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"

    separator = "|" + "|".join("---:" if h != "model" else ":---" for h in HEADERS) + "|"
    return "\n".join([line(HEADERS), separator, *(line(row) for row in cells(ratings))])


def html_table(ratings: Sequence[Rating]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in cells(ratings)
    )
    return f'<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
