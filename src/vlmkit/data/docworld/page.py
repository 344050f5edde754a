"""One DocWorld page: (seed, split, index) -> kind -> drawn page -> scan -> image bytes and record.

This is the unit of determinism. Each page draws from generators seeded by
``SeedSequence(seed, spawn_key=(split code, index, stream))``, so a page does not depend on how many pages,
workers or chunks there are, and no two splits share a stream. Content (stream 0) and scan (stream 1) are
separate streams: the clean and the degraded version of a page carry the same text in the same layout. A page
whose layout does not fit at its sampled text size (only at extreme widths or sizes) is redrawn smaller with
the same content; ``meta.cap_height`` is the size it got.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from vlmkit.data.docworld import form, invoice, letter, receipt, table
from vlmkit.data.docworld.canvas import Overflow, Table
from vlmkit.data.docworld.captions import caption
from vlmkit.data.docworld.config import GENERATOR, SPLITS, DocWorldConfig
from vlmkit.data.docworld.degrade import degrade, encode, sample_scan
from vlmkit.data.docworld.layout import Drawn, Style, sample_style
from vlmkit.documents.types import Document, Line

DRAW: dict[str, Callable[[np.random.Generator, Style, DocWorldConfig], Drawn]] = {
    "receipt": receipt.draw,
    "invoice": invoice.draw,
    "form": form.draw,
    "letter": letter.draw,
    "table": table.draw,
}
MIN_QUESTIONS, MAX_QUESTIONS = 3, 6
SHRINK = 0.9
FIT_ATTEMPTS = 8


def page_rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLITS[split], index, stream)))


def _tables(tables: list[Table], lines: list[Line]) -> list[dict[str, Any]]:
    """Tables as records carry them: each cell's text and box from its line in the final page."""
    out = []
    for item in tables:
        cells = [
            {"row": r, "col": c, "text": lines[i].text, "box": [round(v, 1) for v in lines[i].box]}
            for r, c, i in item.cells
        ]
        rows = 1 + max(cell["row"] for cell in cells)
        cols = 1 + max(cell["col"] for cell in cells)
        out.append({"rows": rows, "cols": cols, "header_rows": item.header_rows, "cells": cells})
    return out


def _draw(config: DocWorldConfig, seed: int, split: str, index: int) -> tuple[str, Style, Drawn, np.random.Generator]:
    """Draw the page at its sampled text size or, while it does not fit, ``SHRINK`` times smaller, each time
    from the same stream (so with the same content); return its kind, style, drawing and the stream."""
    for attempt in range(FIT_ATTEMPTS):
        rng = page_rng(seed, split, index, 0)
        kind = config.kinds[int(rng.integers(len(config.kinds)))]
        style = sample_style(rng, config, kind)
        style = dataclasses.replace(style, cap=style.cap * SHRINK**attempt)
        try:
            drawn = DRAW[kind](rng, style, config)
            drawn.canvas.check_overlaps()
        except Overflow:
            continue
        return kind, style, drawn, rng
    raise RuntimeError(f"DocWorld: page {index} does not fit in {FIT_ATTEMPTS} sizes; widen page_width")


def make_page(config: DocWorldConfig, seed: int, split: str, index: int, image: str) -> tuple[bytes, dict[str, Any]]:
    """Image bytes and record of page ``index`` of ``split``; ``image`` is the relative path it will be saved
    under (the record names it, twice: as ``image`` and as the document's ``path``)."""
    kind, style, drawn, rng = _draw(config, seed, split, index)
    count = min(len(drawn.questions), int(rng.integers(MIN_QUESTIONS, MAX_QUESTIONS + 1)))
    chosen = sorted(int(i) for i in rng.choice(len(drawn.questions), size=count, replace=False))

    scan_rng = page_rng(seed, split, index, 1)
    scan = sample_scan(config, scan_rng)
    scanned, move = degrade(drawn.canvas.image, scan, scan_rng)
    page, position = drawn.canvas.page(scanned.size, move)
    lines = [page.lines[p] for p in position]  # by handle
    record = {
        "image": image,
        "document": Document(image, (page,)).to_dict(),
        "captions": [caption(kind, drawn.fields)],
        "fields": drawn.fields,
        "tables": _tables(drawn.tables, lines),
        "qa": [{"question": q, "answer": a, "type": t} for q, a, t in (drawn.questions[i] for i in chosen)],
        "meta": {
            "generator": GENERATOR,
            "kind": kind,
            "seed": seed,
            "split": split,
            "index": index,
            "font": style.family,
            "cap_height": round(style.cap, 2),
            "clean": config.clean,
            **scan.to_dict(),
        },
    }
    return encode(scanned, scan), record
