"""SearchStore: exact results, incremental updates, model checks, index kinds, tags, merge."""

from __future__ import annotations

import numpy as np
import pytest

from vlmkit.errors import InputError
from vlmkit.search.store import FAISS_FILE, Filters, IndexOptions, ItemMeta, SearchStore


def brute_force(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def test_flat_search_matches_numpy(tmp_path, unit, make_items) -> None:
    vectors, queries = unit(300, 0), unit(7, 1)
    with SearchStore.create(tmp_path, "clip-test", vectors.shape[1]) as store:
        ids = store.add(make_items(0, 300), vectors * 3.0)  # the store normalises
    store = SearchStore.open(tmp_path, "clip-test")
    assert store.kind == "flat" and len(store) == 300
    hits = store.search(queries, k=10)
    order, scores = brute_force(queries, vectors, 10)
    for q in range(len(queries)):
        assert [h.id for h in hits[q]] == ids[order[q]].tolist()
        np.testing.assert_allclose([h.score for h in hits[q]], scores[q], atol=1e-5)
        assert hits[q][0].path == f"photos/{order[q][0] % 3}/img{order[q][0]}.jpg"
    cut = store.search(queries[:1], k=10, min_score=float(scores[0][4]))
    assert [h.id for h in cut[0]] == ids[order[0][:5]].tolist()
    store.close()


def test_incremental_add_remove_and_known_files(tmp_path, unit, make_items) -> None:
    store = SearchStore.create(tmp_path, "m", 16)
    store.add(make_items(0, 10), unit(10, 0))
    frames = [ItemMeta("clips/a.mp4", "vid", 5000, 7.0, 64, 48, frame_time=t) for t in (2.0, 0.0, 1.0)]
    store.add(frames, unit(3, 1))
    store.commit()
    known = store.known_files()
    assert len(known) == 11
    sha256, size, mtime = known["clips/a.mp4"]
    assert (sha256, size, mtime) == ("vid", 5000, 7.0)
    assert known["photos/1/img4.jpg"] == ("hash4", 1004, 4.0)
    stored = store.vectors_for(["clips/a.mp4"])["clips/a.mp4"]
    np.testing.assert_allclose(stored, unit(3, 1)[[1, 2, 0]], atol=1e-6)  # in frame-time order
    with pytest.raises(InputError, match="already in the index"):
        store.add([*make_items(20, 1), frames[0]], unit(2, 2))
    assert len(store) == 13  # the rejected call added nothing

    assert store.remove(["clips/a.mp4", "photos/0/img3.jpg", "not/there.jpg"]) == 4
    store.close()
    store = SearchStore.open(tmp_path)
    assert len(store) == 9 and "clips/a.mp4" not in store.known_files()
    hits = store.search(unit(3, 1), k=9)
    assert all(h.path != "clips/a.mp4" for row in hits for h in row)
    with pytest.raises(InputError, match="not in the index"):
        store.vectors_for(["clips/a.mp4"])
    store.close()


def test_model_mismatch_is_a_clear_error(tmp_path) -> None:
    SearchStore.create(tmp_path, "siglip-base", 16).close()
    with pytest.raises(InputError, match=r"built with model siglip-base; you asked for clip-large"):
        SearchStore.open(tmp_path, "clip-large")
    with pytest.raises(InputError, match="already exists"):
        SearchStore.create(tmp_path, "siglip-base", 16)
    with pytest.raises(InputError, match="no search index"):
        SearchStore.open(tmp_path / "elsewhere")


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_rollback_drops_the_pending_batch(tmp_path, unit, make_items, kind) -> None:
    store = SearchStore.create(tmp_path, "m", 16, IndexOptions(kind=kind))
    store.add(make_items(0, 5), unit(5, 0))
    store.commit()
    store.add(make_items(5, 5), unit(5, 1))
    store.remove(["photos/0/img0.jpg"])
    store.rollback()
    assert len(store) == 5 and store._index.ntotal == 5
    assert {h.id for h in store.search(unit(5, 1), k=10)[0]} == {1, 2, 3, 4, 5}


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_approximate_kinds_find_each_stored_vector(tmp_path, unit, make_items, kind) -> None:
    vectors = unit(600, 3)
    store = SearchStore.create(tmp_path, "m", 16, IndexOptions(kind=kind, pq_m=8))
    ids = store.add(make_items(0, 600), vectors)
    store.commit()
    assert store.kind == kind
    hits = store.search(vectors[:50], k=1)
    assert [row[0].id for row in hits] == ids[:50].tolist()
    np.testing.assert_allclose([row[0].score for row in hits], 1.0, atol=1e-5)  # exact, even for PQ


def test_hnsw_removal_is_hidden_before_commit_and_rebuilt_after(tmp_path, unit, make_items) -> None:
    vectors = unit(200, 4)
    store = SearchStore.create(tmp_path, "m", 16, IndexOptions(kind="hnsw"))
    store.add(make_items(0, 200), vectors)
    store.commit()
    store.remove(["photos/0/img0.jpg"])
    assert all(h.path != "photos/0/img0.jpg" for h in store.search(vectors[:1], k=5)[0])
    assert len(store.search(vectors[:1], k=5)[0]) == 5
    store.close()
    assert SearchStore.open(tmp_path)._index.ntotal == 199


def test_auto_kind_follows_the_collection_size(tmp_path, unit, make_items) -> None:
    options = IndexOptions(flat_max=50, hnsw_max=450, pq_m=8)
    store = SearchStore.create(tmp_path, "m", 16, options)
    vectors = unit(500, 5)
    kinds = []
    for start, stop in ((0, 40), (40, 120), (120, 500)):
        store.add(make_items(start, stop - start), vectors[start:stop])
        store.commit()
        kinds.append(store.kind)
        np.testing.assert_allclose([row[0].score for row in store.search(vectors[:stop:7], k=1)], 1.0, atol=1e-5)
    assert kinds == ["flat", "hnsw", "ivfpq"]
    store.close()
    assert SearchStore.open(tmp_path).kind == "ivfpq"
    store = SearchStore.open(tmp_path, options=IndexOptions(kind="flat"))
    assert store.kind == "flat" and store._index.ntotal == 500


def test_missing_or_stale_faiss_file_is_rebuilt_on_open(tmp_path, unit, make_items) -> None:
    vectors = unit(30, 6)
    store = SearchStore.create(tmp_path, "m", 16)
    ids = store.add(make_items(0, 30), vectors)
    store.commit()
    (tmp_path / FAISS_FILE).unlink()
    store = SearchStore.open(tmp_path)
    assert store.search(vectors[:1], k=1)[0][0].id == ids[0]
    store.add(make_items(30, 1), unit(1, 7))
    store.commit(save_index=False)  # SQLite has a batch the saved faiss file lacks
    assert SearchStore.open(tmp_path)._index.ntotal == 31


def test_set_tags_and_filter_by_them(tmp_path, unit, make_items) -> None:
    store = SearchStore.create(tmp_path, "m", 16)
    ids = store.add(make_items(0, 20), unit(20, 8))
    store.set_tags(["photos/1/img1.jpg", int(ids[2])], [{"cat": 0.9, "indoor": 0.4}, {"cat": 0.7}])
    with pytest.raises(InputError, match="not in the index"):
        store.set_tags(["nope.jpg"], [{"cat": 1.0}])
    hits = store.search(unit(1, 9), k=10, filters=Filters(tags=("cat",)))[0]
    assert sorted(h.id for h in hits) == [ids[1], ids[2]]
    assert {h.id: h.tags for h in hits}[ids[1]] == {"cat": 0.9, "indoor": 0.4}
    assert [h.id for h in store.search(unit(1, 9), k=10, filters=Filters(tags=("cat", "indoor")))[0]] == [ids[1]]


def test_merge_shards(tmp_path, unit, make_items) -> None:
    main = SearchStore.create(tmp_path / "main", "m", 16)
    main.add(make_items(0, 10), unit(10, 0))
    main.close()
    with SearchStore.create(tmp_path / "a", "m", 16) as shard:
        shard.add(make_items(10, 10), unit(10, 1))
    changed = make_items(0, 2)  # img0 unchanged (same hash), img1 re-embedded after an edit
    changed[1] = ItemMeta(changed[1].path, "edited", 1, 99.0, 10, 10)
    with SearchStore.create(tmp_path / "b", "m", 16) as shard:
        shard.add([*changed, *make_items(20, 5)], unit(7, 2))
    SearchStore.create(tmp_path / "other-model", "n", 16).close()

    store = SearchStore.open(tmp_path / "main", "m")
    with pytest.raises(InputError, match="built with model n"):
        store.merge([tmp_path / "other-model"])
    assert store.merge([tmp_path / "a", tmp_path / "b"]) == 16
    store.close()
    store = SearchStore.open(tmp_path / "main", "m")
    assert len(store) == 25
    assert store.known_files()["photos/1/img1.jpg"].sha256 == "edited"
    np.testing.assert_allclose(store.vectors_for(["photos/0/img0.jpg"])["photos/0/img0.jpg"][0], unit(10, 0)[0])
    queries = np.concatenate([unit(10, 1), unit(7, 2)[1:]])
    np.testing.assert_allclose([row[0].score for row in store.search(queries, k=1)], 1.0, atol=1e-5)
