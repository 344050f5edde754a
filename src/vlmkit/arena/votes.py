"""The arena's votes in SQLite: one row per vote, each committed on its own, so a crash loses none.

The database runs in WAL mode with ``synchronous=FULL``: a vote is one transaction, and ``record``
returns only after SQLite has committed it and synced the log, so every vote the server acknowledged
survives the server being killed (and the machine losing power). WAL also lets ``vlmkit arena
ratings`` read the database while the arena keeps writing it.

A vote keeps what ratings need and no more: the battle's id (unique: one vote per battle), when, the
two models in the order they were shown, and the winner, in FastChat's words.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from types import TracebackType

from vlmkit.arena.battles import WINNERS, Battle
from vlmkit.errors import InputError

_WINNERS_SQL = ", ".join(f"'{winner}'" for winner in WINNERS)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY,
    battle TEXT NOT NULL UNIQUE,
    tstamp REAL NOT NULL,
    model_a TEXT NOT NULL,
    model_b TEXT NOT NULL,
    winner TEXT NOT NULL CHECK (winner IN ({_WINNERS_SQL}))
)
"""


class DuplicateVote(InputError):
    """The battle already has its vote."""


class VoteStore:
    """A votes database; safe to share between threads (one connection behind a lock)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path
        self.lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path) -> VoteStore:
        """Open ``path`` for recording, creating it (and its folder) when new."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = cls._connect(path)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            with connection:
                connection.execute(SCHEMA)
        except sqlite3.DatabaseError as error:
            connection.close()
            raise InputError(f"{path}: not usable as a votes database ({error})") from None
        return cls(connection, path)

    @classmethod
    def open_existing(cls, path: str | Path) -> VoteStore:
        """Open a database the arena wrote, for reading its votes."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such votes database")
        connection = cls._connect(path)
        try:
            found = connection.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='votes'").fetchone()
        except sqlite3.DatabaseError as error:
            connection.close()
            raise InputError(f"{path}: not a readable SQLite database ({error})") from None
        if found is None:
            connection.close()
            raise InputError(f"{path}: a SQLite database without a 'votes' table; not the arena's votes")
        return cls(connection, path)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        # autocommit off by isolation_level=None: each statement group below opens its own transaction
        return sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)

    def record(self, battle: str, model_a: str, model_b: str, winner: str) -> int:
        """Store one vote in one transaction; returns its id once it is committed and synced."""
        if winner not in WINNERS:
            raise InputError(f"winner must be one of {', '.join(WINNERS)}; got {winner!r}")
        with self.lock:
            try:
                self.connection.execute("BEGIN IMMEDIATE")
                cursor = self.connection.execute(
                    "INSERT INTO votes (battle, tstamp, model_a, model_b, winner) VALUES (?, ?, ?, ?, ?)",
                    (battle, time.time(), model_a, model_b, winner),
                )
                self.connection.execute("COMMIT")
            except sqlite3.IntegrityError:
                self.connection.execute("ROLLBACK")
                raise DuplicateVote(f"battle {battle} already has a vote") from None
            return int(cursor.lastrowid or 0)

    def battles(self) -> list[Battle]:
        """Every vote as a battle, in the order they were cast."""
        with self.lock:
            rows = self.connection.execute("SELECT model_a, model_b, winner FROM votes ORDER BY id").fetchall()
        return [Battle(*row) for row in rows]

    def count(self) -> int:
        with self.lock:
            return int(self.connection.execute("SELECT COUNT(*) FROM votes").fetchone()[0])

    def close(self) -> None:
        with self.lock:
            self.connection.close()

    def __enter__(self) -> VoteStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
