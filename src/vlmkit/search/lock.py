"""An index directory's ``writer.lock``: one writer at a time, readers free (see ``store``).

The lock is an exclusive ``flock`` (``vlmkit.files.WriterLock``) that the kernel drops when its process
dies, so a killed indexer never leaves an index locked, and a second writer is refused at once, in one
line, instead of waiting or interleaving its batches with the first one's. Whoever takes the lock also
removes the temporary files a killed writer left (``vlmkit.files.remove_stale_temps``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from vlmkit.errors import InputError
from vlmkit.files import WriterLock, remove_stale_temps
from vlmkit.search.manifest import MANIFEST

LOCK_FILE = "writer.lock"
_WRITTEN = (MANIFEST, "vectors.faiss")  # what a store writes with temporary files (store.FAISS_FILE)


def idle_lock(directory: Path) -> WriterLock:
    """The directory's writer lock, not taken (a store that only reads never takes it)."""
    return WriterLock(directory / LOCK_FILE)


def take_lock(directory: Path) -> WriterLock:
    """The directory's writer lock, taken; an ``InputError`` naming the directory when another writer has it."""
    lock = idle_lock(directory)
    try:
        acquired = lock.acquire()
    except OSError as error:  # a read-only directory, say
        raise InputError(
            f"{directory}: cannot lock this search index for writing ({error.strerror or error})"
        ) from None
    if not acquired:
        raise InputError(
            f"{directory}: another vlmkit process is writing this search index; wait for it to finish "
            "or use another index directory (searching it needs no lock)"
        )
    # What a killed writer left half-written: with the lock held, no writer is at work.
    remove_stale_temps(directory, targets=_WRITTEN)
    return lock


def take_lock_if_free(directory: Path) -> WriterLock | None:
    """The writer lock if it is free now; None when another writer holds it or the directory is read-only."""
    lock = idle_lock(directory)
    with contextlib.suppress(OSError):
        if lock.acquire():
            remove_stale_temps(directory, targets=_WRITTEN)
            return lock
    return None
