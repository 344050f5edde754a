"""Index kind choice and the faiss wrappers."""

from __future__ import annotations

import numpy as np
import pytest

from vlmkit.errors import ConfigError
from vlmkit.search import vectors as vec
from vlmkit.search.vectors import IndexOptions, IndexPlan


def test_auto_plan_follows_thresholds() -> None:
    options = IndexOptions(flat_max=100, hnsw_max=1000)
    assert vec.plan_index(99, 64, options).kind == "flat"
    assert vec.plan_index(100, 64, options).kind == "hnsw"
    big = vec.plan_index(100_000, 512, options)
    assert big.kind == "ivfpq"
    assert big.nlist == int(4 * np.sqrt(100_000))
    assert (big.pq_m, big.pq_nbits) == (64, 8)


def test_forced_ivfpq_waits_for_enough_training_data() -> None:
    options = IndexOptions(kind="ivfpq")
    assert vec.plan_index(vec.IVF_MIN_COUNT - 1, 64, options).kind == "flat"
    assert vec.plan_index(vec.IVF_MIN_COUNT, 64, options).kind == "ivfpq"


def test_pq_m_must_divide_dim() -> None:
    assert vec.plan_index(10_000, 96, IndexOptions(kind="ivfpq", pq_m=12)).pq_m == 12
    with pytest.raises(ConfigError, match="divide"):
        vec.plan_index(10_000, 96, IndexOptions(kind="ivfpq", pq_m=10))


def test_ivf_is_retrained_only_when_list_count_drifts_twofold() -> None:
    current = IndexPlan("ivfpq", nlist=100, pq_m=8, pq_nbits=8)
    assert not vec.needs_rebuild(current, IndexPlan("ivfpq", nlist=190, pq_m=8, pq_nbits=8))
    assert vec.needs_rebuild(current, IndexPlan("ivfpq", nlist=210, pq_m=8, pq_nbits=8))
    assert vec.needs_rebuild(current, IndexPlan("hnsw"))
    assert not vec.needs_rebuild(IndexPlan("flat"), IndexPlan("flat"))


def test_options_round_trip_and_reject_unknown_keys() -> None:
    options = IndexOptions(kind="hnsw", ef_search=128)
    assert IndexOptions.from_json(options.to_json()) == options
    with pytest.raises(ConfigError, match="unknown index option"):
        IndexOptions.from_json({"efsearch": 3})
    with pytest.raises(ConfigError, match="kind"):
        IndexOptions(kind="annoy")


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_each_kind_finds_a_stored_vector_and_survives_save_load(kind: str, tmp_path, unit) -> None:
    vectors = unit(800, 0)
    ids = np.arange(10, 810, dtype=np.int64)
    options = IndexOptions(kind=kind, pq_m=8)  # 2 dims per sub-quantiser: codes fine enough at dim 16
    plan = vec.plan_index(len(vectors), vectors.shape[1], options)
    index = vec.new_index(plan, vectors.shape[1], options, vectors)
    vec.add_vectors(index, ids, vectors)
    vec.save_index(index, tmp_path / "v.faiss")
    loaded = vec.load_index(tmp_path / "v.faiss")
    assert vec.plan_of(loaded) == plan
    _, found = vec.search(loaded, vectors[:20], 5, options)
    assert (found[:, :5] == ids[:20, None]).any(axis=1).all()
    assert vec.index_bytes(loaded) == (tmp_path / "v.faiss").stat().st_size


def test_unreadable_index_file_reads_as_missing(tmp_path) -> None:
    (tmp_path / "v.faiss").write_bytes(b"not faiss")
    assert vec.load_index(tmp_path / "v.faiss") is None
    assert vec.load_index(tmp_path / "absent.faiss") is None
