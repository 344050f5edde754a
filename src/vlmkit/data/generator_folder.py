"""The folder a synthetic generator writes: claimed under a lock, refused if it holds anything else, and safe
to write again after a run that stopped.

The generator's spec file (generator, version, split, count, seed, config) goes in first and
``records.jsonl`` last, so a folder with records is complete and one without them is a run that stopped;
the same command on such a folder (or on a complete one) rewrites it with identical bytes. DocWorld and
VideoWorld write their folders through this one. What every generator shares besides: a folder per split
(``generate_splits``), a spec file read back to regenerate a folder (``read_spec``), and chunk results drained
in order under a progress bar (``drain``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from vlmkit.data.generator_config import GeneratorConfig
from vlmkit.data.records import RECORDS_FILE
from vlmkit.errors import ConfigError, InputError
from vlmkit.files import WriterLock, atomic_write_json, remove_stale_temps


def _claim(folder: Path, spec: dict[str, Any], spec_file: str, label: str, contents: Sequence[str]) -> None:
    settings = folder / spec_file
    if settings.exists():
        try:
            same = json.loads(settings.read_text(encoding="utf-8")) == spec
        except (OSError, ValueError):
            same = False
        if not same:
            raise InputError(f"{folder}: holds a {label} dataset made with other settings; choose a new folder")
    elif any((folder / name).exists() for name in (RECORDS_FILE, *contents)):
        raise InputError(f"{folder}: already holds a dataset; choose an empty or new folder")


@contextmanager
def claimed_folder(
    folder: Path, spec: dict[str, Any], spec_file: str, label: str, contents: Sequence[str]
) -> Iterator[Path]:
    """Hold ``folder`` for one run of the ``label`` generator: locked, its stale temporary files gone, ``spec``
    written to ``spec_file``, the ``contents`` subfolders made. A folder with another spec, or without one
    but with records or any of ``contents``, is refused."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = WriterLock(folder)
    if not lock.acquire():
        raise InputError(f"{folder}: another {label} run is writing here")
    try:
        _claim(folder, spec, spec_file, label, contents)
        remove_stale_temps(folder, targets=(RECORDS_FILE, spec_file))  # left by a killed run; we hold the lock
        for name in contents:
            (folder / name).mkdir(exist_ok=True)
        atomic_write_json(folder / spec_file, spec)
        yield folder
    finally:
        lock.release()


Config = TypeVar("Config", bound=GeneratorConfig)


def check_run(
    label: str, splits: Sequence[str], split: str, n: int, unit: str, seed: int, workers: int | None, chunk_size: int
) -> None:
    """One line for a generator run's impossible arguments, before any folder is touched."""
    if split not in splits:
        raise ConfigError(f"{label} split: expected one of {sorted(splits)}, got {split!r}")
    for name, value, least in ((f"number of {unit}", n, 1), ("seed", seed, 0), ("chunk size", chunk_size, 1)):
        if value < least:
            raise ConfigError(f"{label} {name}: expected an integer >= {least}, got {value}")
    if workers is not None and workers < 1:
        raise ConfigError(f"{label} workers: expected an integer >= 1, got {workers}")


def generate_splits(
    generate_split: Callable[..., Path],
    out_dir: str | os.PathLike[str],
    config: GeneratorConfig,
    counts: Mapping[str, int],
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """One folder per split, ``out_dir/<split>``, with ``counts[split]`` items each, by a generator's
    ``generate_split``."""
    return {
        split: generate_split(Path(out_dir) / split, config, split, n, seed, workers, progress)
        for split, n in counts.items()
    }


def read_spec(
    config_file: str | os.PathLike[str], config_class: type[Config], version: int
) -> tuple[Config, str, int, int]:
    """The config, split, count and seed a folder's spec file records, to regenerate that folder."""
    label = config_class.LABEL
    try:
        spec = json.loads(Path(config_file).read_text(encoding="utf-8"))
        config = config_class.from_dict(spec["config"])
        split, n, seed, made_by = spec["split"], int(spec["n"]), int(spec["seed"]), spec["version"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{config_file}: not a readable {label} config ({error})") from None
    if made_by != version:
        raise ConfigError(f"{config_file}: made by generator version {made_by}, this is {version}")
    return config, split, n, seed


def drain(results: Iterable[list[dict[str, Any]]], bar: Any) -> Iterator[dict[str, Any]]:
    """Records of the chunks in chunk order (so in index order) as they complete, counted on ``bar``."""
    for records in results:
        yield from records
        bar.update(len(records))
