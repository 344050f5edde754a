"""Writing DocWorld dataset folders, in parallel, byte-for-byte reproducibly, and safe to run again.

A split folder holds ``images/NNNNNN.png`` (or ``.jpg`` for scanned pages), ``records.jsonl`` and
``docworld.json`` (config, seed, split, count and generator version: all it takes to regenerate the folder).
``docworld.json`` is written first and ``records.jsonl`` last, through ``write_records``, so a folder with
records is always complete, and a folder without them is a run that stopped. Running the same command again
on such a folder (or on a complete one) finishes or rewrites it with identical bytes; a folder holding
anything else is refused. A lock on the folder keeps two runs from writing it at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vlmkit.data.chunks import chunked
from vlmkit.data.docworld.config import GENERATOR_VERSION, SPLITS, DocWorldConfig
from vlmkit.data.docworld.fonts import font_dir
from vlmkit.data.docworld.page import make_page
from vlmkit.data.generator_folder import check_run, claimed_folder, drain
from vlmkit.data.records import write_records
from vlmkit.files import atomic_write_bytes, remove_stale_temps
from vlmkit.progress import progress as progress_bar

CONFIG_FILE = "docworld.json"
CHUNK = 32
"""Most pages per worker task: big enough to amortise the hand-off, small enough to balance two cores."""


def _image_name(index: int, n: int, extension: str) -> str:
    return f"images/{index:0{max(6, len(str(n - 1)))}d}{extension}"


def _write_chunk(
    out_dir: str, config: dict[str, Any], seed: int, split: str, start: int, stop: int, n: int
) -> list[dict[str, Any]]:
    """Draw and save pages ``start..stop-1``; return their records (picklable, for the parent to write)."""
    cfg = DocWorldConfig.from_dict(config)
    records = []
    for index in range(start, stop):
        name = _image_name(index, n, cfg.image_extension)
        data, record = make_page(cfg, seed, split, index, name)
        atomic_write_bytes(Path(out_dir) / name, data)
        records.append(record)
    return records


def generate_split(
    out_dir: str | os.PathLike[str],
    config: DocWorldConfig,
    split: str,
    n: int,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    chunk_size: int = CHUNK,
) -> Path:
    """Write ``n`` pages of ``split`` into ``out_dir`` and return the folder.

    ``workers`` processes (default: all CPUs, capped by the number of chunks; 1 runs in this process) share
    the work in chunks of at most ``chunk_size`` pages; the output is identical for any value of either.
    """
    check_run("DocWorld", SPLITS, split, n, "pages", seed, workers, chunk_size)
    font_dir()  # a missing extra fails here, before the folder is touched
    spec = {"generator": "docworld", "version": GENERATOR_VERSION, "split": split, "n": n, "seed": seed}
    spec["config"] = config.to_dict()
    with claimed_folder(Path(out_dir), spec, CONFIG_FILE, "DocWorld", ("images",)) as folder:
        remove_stale_temps(folder / "images")
        job = (str(folder), config.to_dict(), seed, split)
        bar = progress_bar(total=n, desc=f"docworld {split}", unit="page", disable=not progress)
        write_records(folder, drain(chunked(_write_chunk, job, n, chunk_size, workers), bar))
        bar.close()
    return folder
