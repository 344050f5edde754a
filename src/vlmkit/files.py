"""Atomic file writing: a reader never sees a half-written file, even after a crash.

Everything vlmkit writes (checkpoints, indexes, reports, shards) goes through these helpers: write to
a temporary file in the same directory, flush and fsync it, then ``os.replace`` it over the target,
which is atomic on POSIX and Windows. A failed write removes its temporary file; a killed one leaves
it (``.NAME.XXXXXXXX.tmp``), and ``remove_stale_temps`` clears such files where the caller knows no
writer is at work (it holds the directory's ``WriterLock``), or once they are old.

``WriterLock`` is an exclusive, non-blocking ``flock`` that says "one writer here at a time"; the
kernel drops it when its process dies, so a killed writer never leaves a directory locked.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from vlmkit.errors import ConfigError


def _process_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


try:
    import fcntl
except ImportError:  # Windows: no advisory locks; WriterLock then always succeeds
    fcntl = None  # type: ignore[assignment]

# ``atomic_open``'s temporary files: ".NAME." + mkstemp's random part + ".tmp".
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


# Read once at import (os.umask can only be read by setting it, which is not thread-safe later on).
_FILE_MODE = 0o666 & ~_process_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` only on success."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files; mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, _FILE_MODE)  # mkstemp makes 0600; a written file should get the usual mode
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of ``atomic_open``'s temporary files."""
    return bool(_TEMP_NAME.match(name))


def remove_stale_temps(
    directory: str | os.PathLike[str], older_than: float = 0.0, targets: Iterable[str] | None = None
) -> list[Path]:
    """Delete ``atomic_open`` temporary files in ``directory`` (only those of the ``targets`` file names,
    when given) last written ``older_than`` seconds ago or more; returns them. Call with 0 only while
    holding the lock every writer of those files takes (none is then mid-write); otherwise pass an age
    no live writer reaches between two writes."""
    root = Path(directory)
    if not root.is_dir():
        return []
    prefixes = None if targets is None else tuple(f".{name}." for name in targets)
    removed = []
    now = time.time()
    for path in root.iterdir():
        if not is_temp_name(path.name) or (prefixes is not None and not path.name.startswith(prefixes)):
            continue
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            if now - path.lstat().st_mtime >= older_than:
                path.unlink()
                removed.append(path)
    return removed


class WriterLock:
    """An exclusive advisory lock (``fcntl.flock``) on ``path``: a lock file, created when missing, or
    a directory itself (locking it adds no file to it). ``acquire`` says whether it got it.

    Locks are per open file, so two ``WriterLock`` objects on one path exclude each other even inside
    one process. The lock file is never deleted (unlinking it would let two writers lock two files).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, blocking: bool = False) -> bool:
        """Take the lock; without ``blocking``, return False at once when another holder has it."""
        if self._fd is not None:
            return True
        if fcntl is None:  # no flock here (Windows): nothing to open, nothing excluded
            self._fd = -1
            return True
        flags = os.O_RDONLY if self.path.is_dir() else os.O_RDWR | os.O_CREAT
        fd = os.open(self.path, flags, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError:  # BlockingIOError: another open file holds it
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            if fd >= 0:
                os.close(fd)  # closing the last descriptor of the open file drops its flock

    def __del__(self) -> None:  # an owner dropped without closing does not keep others out
        with contextlib.suppress(Exception):  # (at interpreter exit, os may already be gone)
            self.release()


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON file that must hold an object (a config, a manifest), or one ``ConfigError`` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None
    except RecursionError:
        raise ConfigError(f"{path}: JSON nested too deeply to be a config") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data
