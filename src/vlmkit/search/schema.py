"""The tables of ``items.sqlite``, and the in-place upgrade of databases an older vlmkit created.

Schema 2 (document search) added to schema 1: ``items.page`` (a document's 1-based page, NULL for images and
video frames) inside the unique key, and ``texts``, an FTS5 table of each item's text whose rowid is the item's
id. ``upgrade`` brings a schema-1 database to schema 2 in one transaction when it is opened, so an index built
before keeps its vectors and accepts documents; a database upgraded this way has exactly the tables, columns and
indexes of a new one (``page`` comes last in both).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from vlmkit.errors import InputError

VERSION = 2
# unicode61 folds case and (with remove_diacritics 2) accents, in every script; no stemming, so what is found
# is what was typed. ``lines`` (JSON: each line's text and box, for drawing the match) is stored, not indexed.
TEXTS_TABLE = "CREATE VIRTUAL TABLE texts USING fts5(text, lines UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')"
ITEM_KEY = "CREATE UNIQUE INDEX items_item ON items (path, COALESCE(frame_time, -1.0), COALESCE(page, 0))"
CREATE = f"""
CREATE TABLE items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    width INTEGER,
    height INTEGER,
    frame_time REAL,
    tags TEXT NOT NULL DEFAULT '{{}}',
    added_at REAL NOT NULL,
    vector BLOB NOT NULL,
    page INTEGER
);
{ITEM_KEY};
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('generation', '0'), ('schema', '{VERSION}');
{TEXTS_TABLE};
"""
# What schema 1 lacks, in order; its unique key was items_path_frame, on (path, frame time) alone.
_TO_2 = (
    "ALTER TABLE items ADD COLUMN page INTEGER",
    "DROP INDEX IF EXISTS items_path_frame",
    ITEM_KEY,
    TEXTS_TABLE,
    f"INSERT INTO meta (key, value) VALUES ('schema', '{VERSION}')",
)


def version(db: sqlite3.Connection) -> int:
    """The schema of the open database (1 when it predates the ``schema`` key)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    return int(row[0]) if row else 1


def upgrade(db: sqlite3.Connection, path: Path) -> None:
    """Bring the database to ``VERSION``, all or nothing; a no-op when it is there already.

    The version is read again under the write lock, so two processes opening one old index both succeed and
    upgrade it once. An index this vlmkit cannot write (a read-only folder) is refused in one line.
    """
    if version(db) >= VERSION:
        return
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        raise InputError(
            f"{path}: this index predates document search and must be upgraded, which needs write access ({error})"
        ) from None
    try:
        if version(db) < VERSION:
            for statement in _TO_2:
                db.execute(statement)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
