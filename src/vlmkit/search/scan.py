"""What to index: files found under a folder or named by a dataset, and what changed since last time.

A scan records each file's absolute POSIX path, size and mtime; ``plan_update`` compares it with the
facts the index stored, so unchanged files are skipped without being opened.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vlmkit.data.records import IMAGE_EXTENSIONS, read_records
from vlmkit.errors import InputError
from vlmkit.search.metadata import FileState
from vlmkit.search.video import VIDEO_EXTENSIONS

DOCUMENT_EXTENSIONS = frozenset({".pdf"})  # besides the TIFFs of several pages that are among the images


@dataclass(frozen=True)
class SourceFile:
    """A file to index: absolute POSIX path and the facts that tell whether it changed."""

    path: str
    size: int
    mtime: float


def _source(path: Path) -> SourceFile:
    stat = path.stat()
    return SourceFile(path.resolve().as_posix(), stat.st_size, stat.st_mtime)


def scan_folder(root: str | os.PathLike[str], videos: bool = True) -> list[SourceFile]:
    """Every image, PDF (and video) file under ``root``, sorted by path; hidden files and folders skipped."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    suffixes = IMAGE_EXTENSIONS | DOCUMENT_EXTENSIONS | (VIDEO_EXTENSIONS if videos else frozenset())
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                path = Path(folder) / name
                try:
                    found.append(_source(path))
                except OSError:  # vanished or unreadable between listing and stat: nothing to index
                    continue
    return sorted(found, key=lambda f: f.path)


def scan_records(source: str | os.PathLike[str]) -> tuple[list[SourceFile], list[tuple[str, str]]]:
    """The images a dataset (``records.jsonl``) names, and ``(path, reason)`` for those missing."""
    path = Path(source)
    root = path if path.is_dir() else path.parent
    result = read_records(source, on_error="skip")
    files, missing = [], []
    for image in dict.fromkeys(record.image for record in result.records):
        try:
            files.append(_source(root / image))
        except OSError as error:
            missing.append(((root / image).as_posix(), f"cannot read ({error.strerror or error})"))
    missing += [(f"{problem}", "invalid record") for problem in result.problems]
    return sorted(files, key=lambda f: f.path), missing


def plan_update(
    files: Sequence[SourceFile], known: dict[str, FileState], scope: str | None
) -> tuple[list[SourceFile], list[str]]:
    """Files to (re)embed, and indexed paths under ``scope`` (a folder prefix) that are gone.

    ``scope=None`` means the scan covers the whole index (a dataset), so anything else is gone.
    """
    todo = [f for f in files if (state := known.get(f.path)) is None or (state.size, state.mtime) != (f.size, f.mtime)]
    present = {f.path for f in files}
    prefix = None if scope is None else scope.rstrip("/") + "/"
    gone = [p for p in known if p not in present and (prefix is None or p.startswith(prefix))]
    return todo, sorted(gone)
