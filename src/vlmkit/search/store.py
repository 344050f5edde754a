"""A search index over an image and document collection: vectors in faiss, facts, tags and texts in SQLite.

An index directory holds three files:

- ``manifest.json``: format version, the model id and embedding dimension that produced the vectors,
  index options, and the generation of the saved faiss index (plus counts for people reading it).
- ``items.sqlite``: one row per item with its vector as a BLOB (and its text, if any); the source of truth.
- ``vectors.faiss``: a cache of the vectors for fast search, rebuilt from SQLite whenever it is
  missing, unreadable or stale.

Writes (``add``, ``remove``, ``set_tags``) collect in one SQLite transaction; ``commit()`` makes the
batch durable, bumps a generation counter inside the same transaction, then writes the faiss index and
the manifest atomically. A crash at any point leaves SQLite with exactly the committed batches, and a
faiss file whose recorded generation no longer matches SQLite's is rebuilt on open.

One writer per directory at a time: ``create`` and the first write of an opened store lock ``writer.lock``
there until ``close``; a second writer gets an ``InputError``. Readers take no lock (one rebuilding a stale
faiss cache saves it only when no writer holds the lock). Processes that embed in parallel each write
their own shard, then ``merge``.

Filtered search: the filter is counted in SQLite first. With the flat index, or when at most
``exact_filter_max`` rows match, the matching rows are scored exactly (a faiss ID selector over the
flat index, or the BLOB vectors otherwise). Otherwise the approximate index is over-fetched in
proportion to how selective the filter is, candidates are filtered in SQLite, and the fetch (and the IVF
lists probed) doubles until k candidates survive or the index is exhausted.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import faiss
import numpy as np

from vlmkit.errors import InputError
from vlmkit.progress import progress
from vlmkit.search import vectors as vec
from vlmkit.search.hits import Hit, hits_of
from vlmkit.search.lock import idle_lock, take_lock, take_lock_if_free
from vlmkit.search.manifest import MANIFEST, check_model, read_manifest, write_manifest
from vlmkit.search.metadata import FileState, Filters, ItemMeta, Metadata
from vlmkit.search.vectors import IndexOptions

__all__ = ["FileState", "Filters", "Hit", "IndexOptions", "ItemMeta", "SearchStore", "read_manifest"]

DATABASE = "items.sqlite"
FAISS_FILE = "vectors.faiss"


class SearchStore:
    """One index directory, open for search and incremental updates. Use ``create`` or ``open``."""

    def __init__(self, directory: Path, model_id: str, dim: int, options: IndexOptions, meta: Metadata) -> None:
        self.directory = directory
        self.model_id = model_id
        self.dim = dim
        self.options = options
        self._meta = meta
        self._index: faiss.Index = vec.new_index(vec.IndexPlan("flat"), dim, options)
        self._changed = False  # the set of vectors changed since the last commit
        self._rebuild = False  # the live index holds vectors it cannot remove (HNSW)
        self._stale = 0  # how many such vectors, so searches can over-fetch past them
        self._unsaved = False  # committed changes not yet in the faiss file
        self._generation = -1  # the SQLite generation the live index reflects
        self._lock = idle_lock(directory)

    # lifecycle ------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls, directory: str | os.PathLike[str], model_id: str, dim: int, options: IndexOptions | None = None
    ) -> SearchStore:
        """A new, empty index for vectors of ``dim`` dimensions made by ``model_id``."""
        root = Path(directory)
        if dim < 1:
            raise InputError(f"embedding dimension must be >= 1; got {dim}")
        root.mkdir(parents=True, exist_ok=True)
        lock = take_lock(root)  # before looking: another creator may be half-way
        try:
            if (root / MANIFEST).exists():
                raise InputError(f"a search index already exists at {root}; open it instead")
            (root / FAISS_FILE).unlink(missing_ok=True)
            meta = Metadata.create(root / DATABASE)  # only a creator (holding the lock) has it open
        except BaseException:
            lock.release()
            raise
        store = cls(root, model_id, dim, options or IndexOptions(), meta)
        store._lock, store._generation = lock, meta.generation()
        store._save()  # the manifest, written last, is what makes the directory an index
        return store

    @classmethod
    def open(
        cls, directory: str | os.PathLike[str], model_id: str | None = None, options: IndexOptions | None = None
    ) -> SearchStore:
        """Open an index; ``model_id`` (when given) must match the one it was built with.

        ``options`` replace the stored ones (saved at the next commit); a change of index kind
        rebuilds the faiss index now.
        """
        root = Path(directory)
        manifest = read_manifest(root)
        check_model(root, manifest, model_id)
        stored = IndexOptions.from_json(manifest["options"])
        store = cls(root, manifest["model_id"], int(manifest["dim"]), options or stored, Metadata.open(root / DATABASE))
        index = vec.load_index(root / FAISS_FILE)
        if store._cache_valid(index, manifest, options_changed=store.options != stored):
            store._index, store._generation = index, int(manifest["index"]["generation"])
        elif (lock := take_lock_if_free(root)) is not None:  # no writer at work: rebuild and save the cache
            try:
                store._rebuild_index()
                store._save()
            finally:
                lock.release()
        else:
            store._rebuild_index()  # a writer is at work: it saves the cache itself
        return store

    def lock_for_writing(self) -> None:
        """Become the directory's one writer until ``close`` (``add``, ``remove``, ``set_tags`` and ``merge``
        do this themselves); an ``InputError`` if another process (or store) writes it now."""
        if self._lock.held:
            return
        self._lock = take_lock(self.directory)
        if self._meta.generation() != self._generation:  # a writer committed since this store read
            self._rebuild_index()

    def _cache_valid(self, index: faiss.Index | None, manifest: Mapping[str, Any], options_changed: bool) -> bool:
        if index is None or index.d != self.dim:
            return False
        count = self._meta.count()
        if manifest["index"]["generation"] != self._meta.generation() or index.ntotal != count:
            return False
        wanted = vec.plan_index(count, self.dim, self.options)
        return not (options_changed and vec.needs_rebuild(vec.plan_of(index), wanted))

    def commit(self, save_index: bool = True) -> None:
        """Make the pending batch durable, then bring the faiss cache on disk up to date.

        ``save_index=False`` commits SQLite only: cheaper for frequent small batches on a big index; the
        next saving commit or ``close`` writes the faiss file, and a crash before that costs a rebuild
        on open, never data.
        """
        if self._changed:
            self._meta.bump_generation()
        self._meta.commit()
        if self._changed:
            self._committed()
        if save_index and self._unsaved:
            self._save()

    def _committed(self) -> None:
        """After a commit that changed the vectors: rebuild the live index if it no longer fits."""
        wanted = vec.plan_index(self._meta.count(), self.dim, self.options)
        if self._rebuild or vec.needs_rebuild(vec.plan_of(self._index), wanted):
            self._rebuild_index()
        self._changed = False
        self._unsaved = True
        self._generation = self._meta.generation()

    def rollback(self) -> None:
        """Drop the pending batch; the faiss index returns to the committed state."""
        self._meta.rollback()
        if self._changed:
            index = vec.load_index(self.directory / FAISS_FILE)
            manifest = read_manifest(self.directory)
            if self._cache_valid(index, manifest, options_changed=False):
                self._index, self._rebuild, self._stale = index, False, 0
            else:
                self._rebuild_index()
            self._changed = False

    def close(self) -> None:
        try:
            self.commit()
            self._meta.close()
        finally:
            self._lock.release()

    def __enter__(self) -> SearchStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            try:
                self.rollback()
                self._meta.close()
            finally:
                self._lock.release()

    # updates --------------------------------------------------------------------------------------

    def add(self, items: Sequence[ItemMeta], vectors: np.ndarray) -> np.ndarray:
        """Add items with their vectors (L2-normalised here); returns their ids. Pending until commit."""
        self.lock_for_writing()
        array = vec.normalise(vectors, self.dim)
        if len(items) != len(array):
            raise InputError(f"add got {len(items)} items but {len(array)} vectors")
        if not items:
            return np.empty(0, dtype=np.int64)
        ids = self._meta.insert(items, array)
        vec.add_vectors(self._index, ids, array)
        self._changed = True
        return ids

    def remove(self, paths: Iterable[str]) -> int:
        """Remove every row of these paths (all frames of a video); returns how many rows went."""
        self.lock_for_writing()
        ids = self._meta.delete_paths(paths)
        if len(ids):
            self._drop_from_index(ids)
            self._changed = True
        return len(ids)

    def _drop_from_index(self, ids: np.ndarray) -> None:
        if vec.can_remove(vec.plan_of(self._index)):
            vec.remove_vectors(self._index, ids)
        else:
            self._rebuild = True
            self._stale += len(ids)

    def set_tags(self, targets: Sequence[str | int], tags: Sequence[Mapping[str, float]]) -> int:
        """Replace the tags (label -> score) of each target: a path (all its rows) or a row id."""
        self.lock_for_writing()
        return self._meta.set_tags(targets, tags)

    def merge(self, shard_dirs: Iterable[str | os.PathLike[str]]) -> int:
        """Merge shards written by other processes with the same model; returns rows added.

        A path already here with the same sha256 is kept; with a different hash it is replaced by the
        shard's rows (the shard is taken to be newer), so later shards win over earlier ones. Pending
        changes are committed first; each shard is then committed as its own batch.
        """
        self.lock_for_writing()
        self.commit(save_index=False)
        added = 0
        for shard in map(Path, shard_dirs):
            manifest = read_manifest(shard)
            check_model(shard, manifest, self.model_id)
            if int(manifest["dim"]) != self.dim:
                raise InputError(f"shard {shard} has dimension {manifest['dim']}; this index has {self.dim}")
            if shard.resolve() == self.directory.resolve():
                raise InputError(f"cannot merge index {shard} into itself")
            replaced, first_new = self._meta.merge_from(shard / DATABASE)
            if len(replaced):
                self._drop_from_index(replaced)
            for ids, vectors in self._meta.iter_vectors(self.dim, after_id=first_new):
                vec.add_vectors(self._index, ids, vectors)
                added += len(ids)
            self._committed()
        self.commit()
        return added

    # reads ----------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._meta.count()

    @property
    def kind(self) -> str:
        """The kind of the live faiss index (``flat``, ``hnsw`` or ``ivfpq``)."""
        return vec.plan_of(self._index).kind

    @property
    def metadata(self) -> Metadata:
        """The database, for reads the store does not wrap (texts, in ``fusion``); writes but ``touch`` go via it."""
        return self._meta

    def known_files(self) -> dict[str, FileState]:
        """Every indexed path with the (sha256, size, mtime) it had when embedded."""
        return self._meta.known_files()

    def vectors_for(self, paths: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored unit vectors of each path, shape (rows, dim): one row per image, one per frame."""
        found: dict[str, np.ndarray] = {}
        for path in paths:
            vectors = self._meta.path_vectors(path)
            if vectors is None:
                raise InputError(f"{path} is not in the index at {self.directory}")
            found[path] = vectors
        return found

    def search(
        self, queries: np.ndarray, k: int = 10, *, min_score: float | None = None, filters: Filters | None = None
    ) -> list[list[Hit]]:
        """The best ``k`` hits per query row (best first), with score >= ``min_score`` when given."""
        if k < 1:
            raise InputError(f"k must be >= 1; got {k}")
        q = vec.normalise(np.atleast_2d(queries), self.dim)
        filters = filters or Filters()
        matching = self._meta.count(filters)
        if matching == 0:
            return [[] for _ in q]
        if self.kind == "flat" and not filters.is_empty():
            return self._search_flat_subset(q, k, min_score, self._meta.matching_ids(filters))
        if not filters.is_empty() and matching <= self.options.exact_filter_max:
            return self._search_exact_subset(q, k, min_score, self._meta.matching_ids(filters))
        return self._search_index(q, k, min_score, filters, matching)

    def _search_flat_subset(self, q: np.ndarray, k: int, min_score: float | None, ids: np.ndarray) -> list[list[Hit]]:
        scores, found = vec.search(self._index, q, min(k, len(ids)), self.options, allowed_ids=ids)
        rows = self._meta.rows(np.unique(found[found >= 0]))
        return [
            hits_of(zip(i_row, s_row, strict=True), rows, k, min_score)
            for i_row, s_row in zip(found, scores, strict=True)
        ]

    def _search_exact_subset(self, q: np.ndarray, k: int, min_score: float | None, ids: np.ndarray) -> list[list[Hit]]:
        stored = self._meta.vectors(ids)
        order = np.fromiter(stored, dtype=np.int64, count=len(stored))
        scores = q @ np.stack([stored[int(i)] for i in order]).T
        rows = self._meta.rows(order)
        return [hits_of(zip(order, s_row, strict=True), rows, k, min_score) for s_row in scores]

    def _search_index(
        self, q: np.ndarray, k: int, min_score: float | None, filters: Filters, matching: int
    ) -> list[list[Hit]]:
        plan = vec.plan_of(self._index)
        rerank = self.options.rerank if plan.kind == "ivfpq" else 1
        want = min(k * rerank, matching)
        total = self._index.ntotal
        fetch = min(total, math.ceil(want * total / matching * (1.0 if filters.is_empty() else 1.5)) + self._stale)
        widen = 1
        results: list[list[Hit]] = [[] for _ in q]
        pending = np.arange(len(q))
        while len(pending):
            scores, found = vec.search(self._index, q[pending], fetch, self.options, widen=widen)
            rows = self._meta.rows(np.unique(found[found >= 0]), filters)
            exact = self._meta.vectors(list(rows)) if rerank > 1 else {}
            exhausted = fetch >= total and (plan.kind != "ivfpq" or self.options.nprobe * widen >= plan.nlist)
            still: list[int] = []
            for j, qi in enumerate(pending):
                kept = [(i, s) for i, s in zip(found[j], scores[j], strict=True) if i in rows]
                below = min_score is not None and found[j][-1] >= 0 and scores[j][-1] < min_score
                if len(kept) < want and not exhausted and not below:
                    still.append(qi)
                    continue
                if exact:
                    kept = [(i, float(exact[int(i)] @ q[qi])) for i, _ in kept]
                results[qi] = hits_of(kept, rows, k, min_score)
            pending = np.asarray(still, dtype=np.int64)
            fetch, widen = min(total, fetch * 2), widen * 2
        return results

    # the faiss cache ------------------------------------------------------------------------------

    def _rebuild_index(self) -> None:
        """Rebuild the faiss index from the vectors in SQLite, choosing its kind afresh."""
        count = self._meta.count()
        plan = vec.plan_index(count, self.dim, self.options)
        sample = None
        if vec.training_size(plan):
            ids = self._meta.all_ids()
            picked = np.random.default_rng(0).choice(ids, size=min(len(ids), vec.training_size(plan)), replace=False)
            stored = self._meta.vectors(np.sort(picked))
            sample = np.stack(list(stored.values()))
        index = vec.new_index(plan, self.dim, self.options, sample)
        chunks = self._meta.iter_vectors(self.dim)
        with progress(total=count, desc=f"building {plan.kind} index", unit="vec", disable=count < 100_000) as bar:
            for ids, vectors in chunks:
                vec.add_vectors(index, ids, vectors)
                bar.update(len(ids))
        self._index = index
        self._rebuild = False
        self._stale = 0
        self._generation = self._meta.generation()

    def _save(self) -> None:
        """Write the faiss file, then the manifest that vouches for it; both atomically, in that order."""
        vec.save_index(self._index, self.directory / FAISS_FILE)
        plan = vec.plan_of(self._index)
        write_manifest(
            self.directory,
            {
                "model_id": self.model_id,
                "dim": self.dim,
                "options": self.options.to_json(),
                "index": {
                    "kind": plan.kind,
                    "nlist": plan.nlist,
                    "pq_m": plan.pq_m,
                    "pq_nbits": plan.pq_nbits,
                    "generation": self._meta.generation(),
                },
                "count": self._meta.count(),
                "files": self._meta.count_files(),
                "updated_at": time.time(),
            },
        )
        self._unsaved = False
