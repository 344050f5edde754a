"""Filtered search returns k matching hits when enough match, whichever path serves it."""

from __future__ import annotations

import numpy as np
import pytest

from vlmkit.search.store import Filters, IndexOptions, ItemMeta, SearchStore

COUNT = 600


def mask(filters: Filters) -> np.ndarray:
    """The same conditions as the store's SQL, over the facts make_items gives item n."""
    n = np.arange(COUNT)
    folder = int(filters.folder.rsplit("/", 1)[1]) if filters.folder else None
    return (
        ((n % 3 == folder) if folder is not None else True)
        & (n >= (filters.mtime_min or 0))
        & (n <= (filters.mtime_max if filters.mtime_max is not None else COUNT))
        & (n % 50 * 10 >= (filters.min_width or 0))
    )


BROAD = Filters(folder="photos/1", mtime_min=100, min_width=100)
NARROW = Filters(folder="photos/2", mtime_min=200, mtime_max=400, min_width=480)


@pytest.fixture(params=["flat", "hnsw", "ivfpq"])
def store(request, tmp_path, unit, make_items):
    # exact_filter_max=1 sends every filtered search of the approximate kinds through over-fetching
    options = IndexOptions(kind=request.param, pq_m=8, exact_filter_max=1, nprobe=1, ef_search=8)
    store = SearchStore.create(tmp_path, "m", 16, options)
    store.add(make_items(0, COUNT), unit(COUNT, 0))
    store.commit()
    assert store.kind == request.param
    return store


def test_filtered_hits_match_and_fill_k(store, unit) -> None:
    vectors, queries = unit(COUNT, 0), unit(20, 1)
    allowed = mask(BROAD)
    hits = store.search(queries, k=10, filters=BROAD)
    recall = 0.0
    for q, row in enumerate(hits):
        assert len(row) == 10
        numbers = [int(h.path.rsplit("img", 1)[1][:-4]) for h in row]
        assert allowed[numbers].all()
        scores = np.where(allowed, vectors @ queries[q], -np.inf)
        recall += len(set(numbers) & set(np.argsort(-scores)[:10].tolist())) / 10 / len(queries)
    assert recall >= (0.999 if store.kind == "flat" else 0.6)


def test_a_narrow_filter_returns_every_match(store, unit) -> None:
    expected = np.flatnonzero(mask(NARROW))
    assert 0 < len(expected) < 10
    for row in store.search(unit(3, 2), k=10, filters=NARROW):
        assert sorted(int(h.path.rsplit("img", 1)[1][:-4]) for h in row) == expected.tolist()


def test_folder_filter_is_a_path_prefix_not_a_string_prefix(tmp_path, unit) -> None:
    vectors = unit(3, 3)
    store = SearchStore.create(tmp_path, "m", 16)
    store.add([ItemMeta(p, "h", 1, 0.0) for p in ("a/b/x.jpg", "a/bc/y.jpg", "a/b")], vectors)
    found = store.search(vectors[1:2], k=3, filters=Filters(folder="a/b/"))[0]
    assert sorted(h.path for h in found) == ["a/b", "a/b/x.jpg"]


def test_default_exact_path_for_selective_filters(tmp_path, unit, make_items) -> None:
    vectors = unit(COUNT, 0)
    store = SearchStore.create(tmp_path, "m", 16, IndexOptions(kind="hnsw"))
    store.add(make_items(0, COUNT), vectors)
    hits = store.search(vectors[:1], k=5, filters=BROAD)[0]
    scores = np.where(mask(BROAD), vectors @ vectors[0], -np.inf)
    np.testing.assert_allclose([h.score for h in hits], np.sort(scores)[::-1][:5], atol=1e-5)
