"""A folder of images with same-named ``.txt`` caption files -> canonical records.

This is how many hand-made and fine-tuning caption sets ship (``cat.jpg`` + ``cat.txt``, one
caption per line). Images are found recursively, in sorted order so the record order (and so every
seeded shuffle downstream) is the same on every machine.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from vlmkit.data.records import IMAGE_EXTENSIONS, OnError, ProblemLog, ReadResult, Record
from vlmkit.errors import InputError

logger = logging.getLogger(__name__)


def _images(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.suffix.lower() in IMAGE_EXTENSIONS
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def read_caption_folder(root: str | os.PathLike[str], *, on_error: OnError = "raise") -> ReadResult:
    """One record per image; ``captions`` are the non-blank lines of the sibling ``.txt`` file.

    An image without a ``.txt`` file becomes a record without captions (counted in a warning: it
    is often a copy mistake); an empty or non-UTF-8 caption file is a problem, reported under
    ``on_error``.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    log = ProblemLog(root, on_error)
    records: list[Record] = []
    uncaptioned = 0
    for image in _images(root):
        relative = image.relative_to(root).as_posix()
        caption_file = image.with_suffix(".txt")
        if not caption_file.is_file():
            uncaptioned += 1
            records.append(Record(image=relative))
            continue
        where = caption_file.relative_to(root).as_posix()
        try:
            text = caption_file.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            log.add(where, "captions", f"not UTF-8 text ({error.reason} at byte {error.start})")
            continue
        captions = [line.strip() for line in text.splitlines() if line.strip()]
        if not captions:
            log.add(where, "captions", "caption file is empty")
            continue
        records.append(Record(image=relative, captions=captions))
    if uncaptioned:
        logger.warning("%s: %d image(s) have no .txt caption file", root, uncaptioned)
    return ReadResult(records, log.finish())
