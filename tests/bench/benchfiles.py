"""Benchmark files written the way their publishers write them, for the bench tests."""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path

from PIL import Image


def png(color: tuple[int, int, int], size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write_tsv(path: Path, rows: list[dict[str, object]]) -> Path:
    """A VLMEvalKit TSV: tab-separated, a header of every column, missing cells empty (as pandas writes NaN)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return path
