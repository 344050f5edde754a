"""The SQLite side of a search index: one row per embedded item, the source of truth.

Each row holds the item's file facts (path, sha256, size, mtime, pixel size, frame time for video
frames, page for documents), its tags and its vector as a float32 BLOB, so the faiss index can always be
rebuilt from this database alone; an item's text, when it has one, is in ``texts`` under the same id.
Row ids are faiss ids; ``AUTOINCREMENT`` guarantees an id is never reused, so a vector still cached in
faiss (or a text) after its row was deleted can never be mistaken for a newer item.

Writes happen in one open transaction that the store commits as a batch; SQLite's journal makes that
batch all-or-nothing across crashes, texts included. The tables are ``schema``'s; opening a database an
older vlmkit made upgrades it in place.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vlmkit.errors import InputError
from vlmkit.search import schema, texts
from vlmkit.search.texts import TextLine

_COLUMNS = "id, path, sha256, size, mtime, width, height, frame_time, tags, added_at, page"
_FIELDS = "path, sha256, size, mtime, width, height, frame_time, tags, added_at, vector, page"  # all but id
_CHUNK = 4096  # ids per IN (...) list: far below SQLite's limit on bound variables


@dataclass(frozen=True)
class ItemMeta:
    """What the indexer knows about one embedded item (an image, one frame of a video, one page of a
    document), with the lines of its text when it was read (a page, an OCR'd image)."""

    path: str
    sha256: str
    size: int
    mtime: float
    width: int | None = None
    height: int | None = None
    frame_time: float | None = None
    tags: Mapping[str, float] = field(default_factory=dict)
    page: int | None = None
    lines: tuple[TextLine, ...] = ()


class FileState(NamedTuple):
    """The facts an indexer compares to decide whether a file changed since it was embedded."""

    sha256: str
    size: int
    mtime: float


class Row(NamedTuple):
    id: int
    path: str
    sha256: str
    size: int
    mtime: float
    width: int | None
    height: int | None
    frame_time: float | None
    tags: dict[str, float]
    added_at: float
    page: int | None


@dataclass(frozen=True)
class Filters:
    """Conditions a search hit must meet; every field left as None (or empty) matches everything.

    ``folder`` matches that path and everything below it (``"a/b"`` matches ``a/b/c.jpg``, not
    ``a/bc.jpg``); paths are compared as stored, with ``/`` separators. ``tags`` must all be present.
    """

    folder: str | None = None
    mtime_min: float | None = None
    mtime_max: float | None = None
    min_width: int | None = None
    min_height: int | None = None
    tags: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return self == Filters()

    def sql(self) -> tuple[str, list[Any]]:
        """A WHERE clause over ``items`` and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.folder is not None:
            folder = self.folder.rstrip("/")
            clauses.append("(path = ? OR substr(path, 1, ?) = ?)")
            params += [folder, len(folder) + 1, folder + "/"]
        for column, op, value in (
            ("mtime", ">=", self.mtime_min),
            ("mtime", "<=", self.mtime_max),
            ("width", ">=", self.min_width),
            ("height", ">=", self.min_height),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        for tag in self.tags:
            clauses.append("EXISTS (SELECT 1 FROM json_each(items.tags) WHERE json_each.key = ?)")
            params.append(tag)
        return (" AND ".join(clauses) or "1"), params


def _chunks(ids: Sequence[int] | np.ndarray) -> Iterator[list[int]]:
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def _check(item: ItemMeta) -> None:
    if not item.path:
        raise InputError("item path is empty")
    if item.frame_time is not None and item.frame_time < 0:
        raise InputError(f"{item.path}: frame_time must be >= 0 seconds; got {item.frame_time}")
    if item.size < 0:
        raise InputError(f"{item.path}: size must be >= 0 bytes; got {item.size}")
    if item.page is not None and item.page < 1:
        raise InputError(f"{item.path}: page must be >= 1; got {item.page}")


class Metadata:
    """One SQLite connection with an explicit write transaction the store commits as a batch."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def create(cls, path: Path) -> Metadata:
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)  # from a create that crashed before writing its manifest
        meta = cls._connect(path)
        meta._db.executescript(schema.CREATE)
        return meta

    @classmethod
    def open(cls, path: Path) -> Metadata:
        if not path.is_file():
            raise InputError(f"search index database {path} is missing")
        meta = cls._connect(path)
        try:
            schema.upgrade(meta._db, path)
        except BaseException:
            meta.close()
            raise
        return meta

    @classmethod
    def _connect(cls, path: Path) -> Metadata:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        return cls(db, path)

    # transactions ---------------------------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    def _begin(self) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def close(self) -> None:
        self._db.close()

    def generation(self) -> int:
        """Counts committed batches that changed the set of vectors; the faiss cache records it too."""
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def bump_generation(self) -> None:
        self._begin()
        self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    # writes ---------------------------------------------------------------------------------------

    def insert(self, items: Sequence[ItemMeta], vectors: np.ndarray) -> np.ndarray:
        """Insert rows and their texts; all or none of them (a duplicate path, frame time and page rejects the
        whole call)."""
        for item in items:
            _check(item)
        self._begin()
        self._db.execute("SAVEPOINT insert_items")
        now = time.time()
        ids = np.empty(len(items), dtype=np.int64)
        try:
            for n, (item, vector) in enumerate(zip(items, vectors, strict=True)):
                cursor = self._db.execute(
                    f"INSERT INTO items ({_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        item.path,
                        item.sha256,
                        int(item.size),
                        float(item.mtime),
                        item.width,
                        item.height,
                        item.frame_time,
                        json.dumps(dict(item.tags), sort_keys=True),
                        now,
                        vector.astype("<f4").tobytes(),
                        item.page,
                    ),
                )
                ids[n] = cursor.lastrowid
            texts.insert(self._db, ((i, item.lines) for i, item in zip(ids, items, strict=True)))
        except sqlite3.IntegrityError:
            self._db.execute("ROLLBACK TO insert_items")
            self._db.execute("RELEASE insert_items")
            page = "" if item.page is None else f" page {item.page}"
            frame = "" if item.frame_time is None else f" at frame time {item.frame_time}"
            raise InputError(f"{item.path}{page}{frame} is already in the index; remove it first") from None
        self._db.execute("RELEASE insert_items")
        return ids

    def delete_paths(self, paths: Iterable[str]) -> np.ndarray:
        """Delete every row of these paths, and their texts; returns the ids deleted."""
        self._begin()
        removed: list[int] = []
        for path in dict.fromkeys(paths):
            removed += [r[0] for r in self._db.execute("SELECT id FROM items WHERE path = ?", (path,))]
            self._db.execute("DELETE FROM items WHERE path = ?", (path,))
        texts.delete(self._db, removed)
        return np.asarray(removed, dtype=np.int64)

    def touch(self, path: str, size: int, mtime: float) -> None:
        """New file facts for a path whose content (hash) is unchanged: its rows, vectors and texts stay."""
        self._begin()
        self._db.execute("UPDATE items SET size = ?, mtime = ? WHERE path = ?", (int(size), float(mtime), path))

    def set_tags(self, targets: Sequence[str | int], tags: Sequence[Mapping[str, float]]) -> int:
        """Replace the tags of each target (a path: all its rows; an int: that row); returns rows changed."""
        if len(targets) != len(tags):
            raise InputError(f"set_tags got {len(targets)} targets but {len(tags)} tag sets")
        self._begin()
        changed = 0
        for target, item_tags in zip(targets, tags, strict=True):
            column = "id" if isinstance(target, int | np.integer) else "path"
            value = int(target) if column == "id" else target
            cursor = self._db.execute(
                f"UPDATE items SET tags = ? WHERE {column} = ?", (json.dumps(dict(item_tags), sort_keys=True), value)
            )
            if cursor.rowcount == 0:
                raise InputError(f"set_tags: {target!r} is not in the index")
            changed += cursor.rowcount
        return changed

    def merge_from(self, shard_db: Path) -> tuple[np.ndarray, int]:
        """Copy a shard's rows and texts in; a path already here with the same sha256 is kept, with another
        hash it is replaced by the shard's rows. Returns (ids deleted here, first new id).

        SQLite attaches and detaches databases only between transactions, so this commits its own
        transaction (with a generation bump) and must be called with none open. A shard an older vlmkit
        wrote is upgraded first.
        """
        Metadata.open(shard_db).close()
        self._db.execute("ATTACH DATABASE ? AS shard", (str(shard_db),))
        try:
            self._begin()
            replaced = np.asarray(
                [
                    r[0]
                    for r in self._db.execute(
                        "SELECT id FROM main.items i WHERE EXISTS (SELECT 1 FROM shard.items s"
                        " WHERE s.path = i.path AND s.sha256 != i.sha256)"
                    )
                ],
                dtype=np.int64,
            )
            for chunk in _chunks(replaced):
                self._db.execute(f"DELETE FROM main.items WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            texts.delete(self._db, replaced)
            first_new = self._next_id()
            self._db.execute(
                f"INSERT INTO main.items ({_FIELDS}) SELECT {_FIELDS} FROM shard.items s"
                " WHERE NOT EXISTS (SELECT 1 FROM main.items i WHERE i.path = s.path) ORDER BY s.id"
            )
            texts.copy_attached(self._db, "shard", first_new)
            self.bump_generation()
            self.commit()
        except BaseException:
            self.rollback()
            raise
        finally:
            self._db.execute("DETACH DATABASE shard")
        return replaced, first_new

    def _next_id(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'items'").fetchone()
        return (row[0] if row else 0) + 1

    # reads ----------------------------------------------------------------------------------------

    def count(self, filters: Filters | None = None) -> int:
        where, params = (filters or Filters()).sql()
        return int(self._db.execute(f"SELECT COUNT(*) FROM items WHERE {where}", params).fetchone()[0])

    def count_files(self) -> int:
        return int(self._db.execute("SELECT COUNT(DISTINCT path) FROM items").fetchone()[0])

    def matching_ids(self, filters: Filters) -> np.ndarray:
        where, params = filters.sql()
        rows = self._db.execute(f"SELECT id FROM items WHERE {where}", params).fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def all_ids(self) -> np.ndarray:
        return np.asarray([r[0] for r in self._db.execute("SELECT id FROM items")], dtype=np.int64)

    def known_files(self) -> dict[str, FileState]:
        return {
            path: FileState(sha256, size, mtime)
            for path, sha256, size, mtime in self._db.execute("SELECT path, sha256, size, mtime FROM items")
        }

    def rows(self, ids: Sequence[int] | np.ndarray, filters: Filters | None = None) -> dict[int, Row]:
        """The rows among ``ids`` that still exist and pass ``filters``, by id."""
        where, params = (filters or Filters()).sql()
        found: dict[int, Row] = {}
        for chunk in _chunks(ids):
            query = f"SELECT {_COLUMNS} FROM items WHERE id IN ({','.join('?' * len(chunk))}) AND {where}"
            for r in self._db.execute(query, [*chunk, *params]):
                found[r[0]] = Row(*r[:8], json.loads(r[8]), *r[9:])
        return found

    def has_texts(self) -> bool:
        """Whether any item has a text (else text queries can only be answered by the embeddings)."""
        return texts.any_text(self._db)

    def text_ranking(self, query: str, k: int, filters: Filters) -> list[tuple[int, float]]:
        """``(id, BM25 relevance)`` of the best ``k`` items passing ``filters`` whose text matches ``query``."""
        where, params = filters.sql()
        return texts.ranking(self._db, query, k, where, params)

    def lines(self, ids: Sequence[int]) -> dict[int, list[TextLine]]:
        """The text lines of those ``ids`` that have a text."""
        return texts.lines(self._db, ids)

    def tags_by_path(self) -> dict[str, dict[str, float]]:
        """Every indexed path with its tags (label -> score; all rows of a path share them)."""
        rows = self._db.execute("SELECT path, tags, MIN(id) FROM items GROUP BY path ORDER BY path")
        return {path: json.loads(tags) for path, tags, _ in rows}

    def best_tagged(self, filters: Filters, k: int) -> list[tuple[int, float]]:
        """``(id, score)`` of the best ``k`` files carrying every tag in ``filters.tags`` (and passing the
        rest of ``filters``), one row per file (its first), best first. A file's score is the lowest of its
        scores for those tags; ties go by path."""
        if not filters.tags:
            raise InputError("best_tagged needs at least one tag")
        where, params = filters.sql()
        marks = ",".join("?" * len(filters.tags))
        score = f"(SELECT MIN(json_each.value) FROM json_each(items.tags) WHERE json_each.key IN ({marks}))"
        query = (
            f"SELECT MIN(id), MIN({score}) AS score FROM items WHERE {where}"
            " GROUP BY path ORDER BY score DESC, path LIMIT ?"
        )
        rows = self._db.execute(query, [*filters.tags, *params, int(k)])
        return [(int(i), float(s)) for i, s in rows]

    def vectors(self, ids: Sequence[int] | np.ndarray) -> dict[int, np.ndarray]:
        found: dict[int, np.ndarray] = {}
        for chunk in _chunks(ids):
            query = f"SELECT id, vector FROM items WHERE id IN ({','.join('?' * len(chunk))})"
            found.update((i, _vector(blob)) for i, blob in self._db.execute(query, chunk))
        return found

    def path_vectors(self, path: str) -> np.ndarray | None:
        """All vectors of one path, in frame-time order, or None when the path is not indexed."""
        blobs = self._db.execute("SELECT vector FROM items WHERE path = ? ORDER BY frame_time, id", (path,)).fetchall()
        return np.stack([_vector(b[0]) for b in blobs]) if blobs else None

    def iter_vectors(self, dim: int, chunk: int = 8192, after_id: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) for every row with id >= ``after_id``, in id order, ``chunk`` rows at a time."""
        cursor = self._db.execute("SELECT id, vector FROM items WHERE id >= ? ORDER BY id", (after_id,))
        while batch := cursor.fetchmany(chunk):
            ids = np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch))
            vectors = np.frombuffer(b"".join(r[1] for r in batch), dtype="<f4").reshape(len(batch), dim)
            yield ids, vectors.astype(np.float32)
