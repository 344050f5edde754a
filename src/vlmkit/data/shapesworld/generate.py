"""Writing ShapesWorld dataset folders, in parallel and byte-for-byte reproducibly.

A split folder holds ``images/NNNNNN.png``, ``records.jsonl`` and ``shapesworld.json`` (the config, seed,
split, count and generator version: all it takes to regenerate the folder). Workers render chunks of
indices and write their PNGs; the parent writes ``records.jsonl`` in index order, last, so a folder
with records is always complete, and the bytes never depend on the worker count.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vlmkit.data.chunks import chunked
from vlmkit.data.generator_folder import check_run, read_spec
from vlmkit.data.records import RECORDS_FILE
from vlmkit.data.shapesworld.config import GENERATOR_VERSION, SPLITS, ShapesWorldConfig
from vlmkit.data.shapesworld.example import make_example
from vlmkit.errors import InputError
from vlmkit.files import atomic_open, atomic_write_bytes, atomic_write_json
from vlmkit.progress import progress as progress_bar

CONFIG_FILE = "shapesworld.json"
CHUNK = 200


def _image_name(index: int, n: int) -> str:
    return f"images/{index:0{max(6, len(str(n - 1)))}d}.png"


def _write_chunk(
    out_dir: str, config: dict[str, Any], seed: int, split: str, start: int, stop: int, n: int
) -> list[str]:
    """Render and save images ``start..stop-1``; return their records as JSON lines (picklable)."""
    cfg = ShapesWorldConfig.from_dict(config)
    lines = []
    for index in range(start, stop):
        png, record = make_example(cfg, seed, split, index)
        name = _image_name(index, n)
        atomic_write_bytes(Path(out_dir) / name, png)
        lines.append(json.dumps({"image": name, **record}, separators=(",", ":")))
    return lines


def generate_split(
    out_dir: str | os.PathLike[str],
    config: ShapesWorldConfig,
    split: str,
    n: int,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    chunk_size: int = CHUNK,
) -> Path:
    """Write ``n`` images of ``split`` into ``out_dir`` and return the folder.

    ``workers`` processes (default: all CPUs, capped by the number of chunks of ``chunk_size``
    images; 1 runs in this process) share the work; the output is identical for any value of either.
    """
    check_run("ShapesWorld", SPLITS, split, n, "images", seed, workers, chunk_size)
    folder = Path(out_dir)
    if (folder / RECORDS_FILE).exists() or (folder / "images").exists():
        raise InputError(f"{folder}: already holds a dataset; choose an empty or new folder")
    (folder / "images").mkdir(parents=True, exist_ok=True)
    job = (str(folder), config.to_dict(), seed, split)
    bar = progress_bar(total=n, desc=f"shapesworld {split}", unit="img", disable=not progress)
    with atomic_open(folder / RECORDS_FILE, "w") as records:
        _drain(chunked(_write_chunk, job, n, chunk_size, workers), records, bar)
    bar.close()
    atomic_write_json(
        folder / CONFIG_FILE,
        {
            "generator": "shapesworld",
            "version": GENERATOR_VERSION,
            "split": split,
            "n": n,
            "seed": seed,
            "config": config.to_dict(),
        },
    )
    return folder


def _drain(results: Iterator[list[str]], records: Any, bar: Any) -> None:
    """Write chunk results in chunk order (so in index order) as they complete."""
    for lines in results:
        records.write("".join(line + "\n" for line in lines))
        bar.update(len(lines))


def regenerate(
    config_file: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Rebuild the folder a ``shapesworld.json`` describes, byte-identical, into ``out_dir``."""
    config, split, n, seed = read_spec(config_file, ShapesWorldConfig, GENERATOR_VERSION)
    return generate_split(out_dir, config, split, n, seed, workers, progress)


def vocabulary(dataset_dir: str | os.PathLike[str]) -> tuple[list[str], list[str]] | None:
    """(colours, shapes) of the generator that wrote ``dataset_dir``, or None if it is not ShapesWorld.

    Evaluation uses it for the full class list of zero-shot tests and to find objects named in captions.
    """
    path = Path(dataset_dir) / CONFIG_FILE
    if not path.exists():
        return None
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings = settings.get("config", settings)
    colors, shapes = settings.get("colors"), settings.get("shapes")
    return (list(colors), list(shapes)) if colors and shapes else None
