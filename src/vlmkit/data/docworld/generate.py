"""Writing DocWorld dataset folders, in parallel, byte-for-byte reproducibly, and safe to run again.

A split folder holds ``images/NNNNNN.png`` (or ``.jpg`` for scanned pages), ``records.jsonl`` and
``docworld.json`` (config, seed, split, count and generator version: all it takes to regenerate the folder).
``docworld.json`` is written first and ``records.jsonl`` last, through ``write_records``, so a folder with
records is always complete, and a folder without them is a run that stopped. Running the same command again
on such a folder (or on a complete one) finishes or rewrites it with identical bytes; a folder holding
anything else is refused. A lock on the folder keeps two runs from writing it at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from vlmkit.data.chunks import chunked
from vlmkit.data.docworld.config import GENERATOR_VERSION, SPLITS, DocWorldConfig
from vlmkit.data.docworld.fonts import font_dir
from vlmkit.data.docworld.page import make_page
from vlmkit.data.records import RECORDS_FILE, write_records
from vlmkit.errors import ConfigError, InputError
from vlmkit.files import WriterLock, atomic_write_bytes, atomic_write_json, remove_stale_temps
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


def _claim(folder: Path, spec: dict[str, Any]) -> None:
    """Refuse ``folder`` unless it is empty or holds this very dataset (finished or not)."""
    settings = folder / CONFIG_FILE
    if settings.exists():
        try:
            same = json.loads(settings.read_text(encoding="utf-8")) == spec
        except (OSError, ValueError):
            same = False
        if not same:
            raise InputError(f"{folder}: holds a DocWorld dataset made with other settings; choose a new folder")
    elif (folder / RECORDS_FILE).exists() or (folder / "images").exists():
        raise InputError(f"{folder}: already holds a dataset; choose an empty or new folder")


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
    if split not in SPLITS:
        raise ConfigError(f"DocWorld split: expected one of {sorted(SPLITS)}, got {split!r}")
    if n < 1:
        raise ConfigError(f"DocWorld: number of pages must be >= 1, got {n}")
    if seed < 0:
        raise ConfigError(f"DocWorld seed: expected an integer >= 0, got {seed}")
    if workers is not None and workers < 1:
        raise ConfigError(f"DocWorld workers: expected an integer >= 1, got {workers}")
    if chunk_size < 1:
        raise ConfigError(f"DocWorld chunk size: expected an integer >= 1, got {chunk_size}")
    font_dir()  # a missing extra fails here, before the folder is touched
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    lock = WriterLock(folder)
    if not lock.acquire():
        raise InputError(f"{folder}: another DocWorld run is writing here")
    try:
        spec = {"generator": "docworld", "version": GENERATOR_VERSION, "split": split, "n": n, "seed": seed}
        spec["config"] = config.to_dict()
        _claim(folder, spec)
        remove_stale_temps(folder, targets=(RECORDS_FILE, CONFIG_FILE))  # left by a killed run; we hold the lock
        remove_stale_temps(folder / "images")
        atomic_write_json(folder / CONFIG_FILE, spec)
        (folder / "images").mkdir(exist_ok=True)
        job = (str(folder), config.to_dict(), seed, split)
        bar = progress_bar(total=n, desc=f"docworld {split}", unit="page", disable=not progress)
        write_records(folder, _drain(chunked(_write_chunk, job, n, chunk_size, workers), bar))
        bar.close()
    finally:
        lock.release()
    return folder


def _drain(results: Iterable[list[dict[str, Any]]], bar: Any) -> Iterator[dict[str, Any]]:
    """Records of the chunks in chunk order (so in index order) as they complete."""
    for records in results:
        yield from records
        bar.update(len(records))


def generate_all(
    out_dir: str | os.PathLike[str],
    config: DocWorldConfig,
    counts: Mapping[str, int],
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Write one folder per split, ``out_dir/<split>``, with ``counts[split]`` pages each."""
    return {
        split: generate_split(Path(out_dir) / split, config, split, n, seed, workers, progress)
        for split, n in counts.items()
    }
