"""The folder a synthetic generator writes: claimed under a lock, refused if it holds anything else, and safe
to write again after a run that stopped.

The generator's spec file (generator, version, split, count, seed, config) goes in first and
``records.jsonl`` last, so a folder with records is complete and one without them is a run that stopped;
the same command on such a folder (or on a complete one) rewrites it with identical bytes. DocWorld keeps
its own copy of this rule in ``docworld/generate.py``; VideoWorld writes its folders through this one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vlmkit.data.records import RECORDS_FILE
from vlmkit.errors import InputError
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
