"""The faiss side of a search index: which index kind fits a collection, and how to build and query it.

The faiss index is a derived cache: every vector also lives in SQLite, so anything here may be thrown
away and rebuilt. Three kinds cover the range of collection sizes:

- ``flat``: exact inner product (``IndexFlatIP`` in an ``IndexIDMap2``). Exact, no training, supports
  removal; search time grows linearly, so it is the choice for small collections.
- ``hnsw``: a graph (``IndexHNSWFlat``, inner product, in an ``IndexIDMap2``). Fast and accurate, keeps
  full vectors plus the graph in memory, and cannot remove vectors, so removals trigger a rebuild.
- ``ivfpq``: inverted lists over product-quantised codes (``IndexIVFPQ``). A few dozen bytes per vector,
  so it holds collections that do not fit in memory as float32; scores are approximate, which is why
  the store re-scores its candidates with the exact vectors.

Vectors are L2-normalised, so inner product is cosine similarity for every kind.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from vlmkit.errors import ConfigError, InputError
from vlmkit.files import atomic_open

IndexKind = Literal["flat", "hnsw", "ivfpq"]
KINDS: tuple[str, ...] = ("auto", "flat", "hnsw", "ivfpq")
# IVF-PQ must be trained; below this many vectors an exact index is both smaller and faster, so a
# requested IVF-PQ index starts flat and is trained once the collection reaches this size.
IVF_MIN_COUNT = 400


@dataclass(frozen=True)
class IndexOptions:
    """How the store chooses, builds and searches its faiss index.

    Attributes:
        kind: ``"auto"`` picks by collection size (below), or force ``"flat"``, ``"hnsw"`` or ``"ivfpq"``.
        flat_max: with ``auto``, collections smaller than this use exact search.
        hnsw_max: with ``auto``, collections from ``flat_max`` up to this use HNSW; larger ones IVF-PQ,
            whose memory per vector is a small fraction of HNSW's.
        hnsw_m: HNSW graph degree (links per node); more is more accurate, bigger and slower to build.
        ef_construction: HNSW candidate list size while building.
        ef_search: HNSW candidate list size while searching (raised to k when k is larger).
        nprobe: IVF lists visited per query.
        pq_m: product-quantiser sub-vectors; must divide the dimension. None: the largest divisor
            leaving at least 8 dimensions per sub-vector (64 bytes per vector at dim 512).
        rerank: IVF-PQ fetches ``rerank * k`` candidates and re-scores them exactly.
        exact_filter_max: a filtered search matching at most this many rows scores them exactly
            instead of probing an approximate index, which would have to over-fetch enormously.
    """

    kind: str = "auto"
    flat_max: int = 50_000
    hnsw_max: int = 1_000_000
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    nprobe: int = 32
    pq_m: int | None = None
    rerank: int = 4
    exact_filter_max: int = 4096

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"index kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        for name in (
            "flat_max",
            "hnsw_max",
            "hnsw_m",
            "ef_construction",
            "ef_search",
            "nprobe",
            "rerank",
            "exact_filter_max",
        ):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"index option {name} must be >= 1; got {getattr(self, name)}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexOptions:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown index option(s) {', '.join(unknown)}; expected some of {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True)
class IndexPlan:
    """The shape of one faiss index; two plans that differ mean the index must be rebuilt."""

    kind: IndexKind
    nlist: int = 0
    pq_m: int = 0
    pq_nbits: int = 0


def plan_index(count: int, dim: int, options: IndexOptions) -> IndexPlan:
    """Choose the index for ``count`` vectors of ``dim`` dimensions."""
    kind = options.kind
    if kind == "auto":
        kind = "flat" if count < options.flat_max else "hnsw" if count < options.hnsw_max else "ivfpq"
    if kind == "ivfpq" and count < IVF_MIN_COUNT:
        kind = "flat"
    if kind != "ivfpq":
        return IndexPlan(kind)  # type: ignore[arg-type]
    # nlist ~ 4 sqrt(n) balances coarse search against list length; at least one list per 39 training
    # points keeps k-means meaningful on small collections.
    nlist = max(1, min(int(4 * math.sqrt(max(count, 1))), max(count, 1) // 39))
    # 256 centroids per sub-quantiser want ~10k training points; fewer bits keep small sets trainable.
    nbits = max(1, min(8, int(math.log2(max(count // 39, 2)))))
    return IndexPlan("ivfpq", nlist=nlist, pq_m=_pq_m(dim, options.pq_m), pq_nbits=nbits)


def _pq_m(dim: int, requested: int | None) -> int:
    if requested is not None:
        if requested < 1 or dim % requested:
            raise ConfigError(f"index option pq_m={requested} must divide the embedding dimension {dim}")
        return requested
    return max(m for m in range(1, dim + 1) if dim % m == 0 and dim // m >= min(8, dim))


def needs_rebuild(current: IndexPlan, wanted: IndexPlan) -> bool:
    """True when the live index no longer suits the collection.

    IVF-PQ tolerates growth or shrinkage until its list count is off by more than a factor of two (or
    a grown collection affords more bits per code), so a growing collection is not retrained on every
    commit.
    """
    if current.kind != wanted.kind:
        return True
    if current.kind != "ivfpq":
        return False
    if current.pq_m != wanted.pq_m or current.pq_nbits < wanted.pq_nbits:
        return True
    return not 0.5 <= wanted.nlist / current.nlist <= 2.0


def training_size(plan: IndexPlan) -> int:
    """How many sample vectors ``new_index`` wants for training (0 when the kind needs none)."""
    if plan.kind != "ivfpq":
        return 0
    # faiss asks for 39 points per centroid, for the coarse lists and for each sub-quantiser alike.
    return 39 * max(plan.nlist, 1 << plan.pq_nbits)


def new_index(plan: IndexPlan, dim: int, options: IndexOptions, sample: np.ndarray | None = None) -> faiss.Index:
    """An empty index of the planned kind, trained on ``sample`` where the kind needs training."""
    if plan.kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if plan.kind == "hnsw":
        graph = faiss.IndexHNSWFlat(dim, options.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = options.ef_construction
        graph.hnsw.efSearch = options.ef_search
        return faiss.IndexIDMap2(graph)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, plan.nlist, plan.pq_m, plan.pq_nbits, faiss.METRIC_INNER_PRODUCT)
    if sample is None or len(sample) < plan.nlist:
        raise InputError(f"IVF-PQ with {plan.nlist} lists needs at least {plan.nlist} training vectors")
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.nprobe = options.nprobe
    return index


def plan_of(index: faiss.Index) -> IndexPlan:
    """Read the plan back from a loaded index, so a stale or mis-shaped cache can be detected."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    if isinstance(inner, faiss.IndexFlatIP):
        return IndexPlan("flat")
    if isinstance(inner, faiss.IndexHNSWFlat):
        return IndexPlan("hnsw")
    if isinstance(inner, faiss.IndexIVFPQ):
        return IndexPlan("ivfpq", nlist=inner.nlist, pq_m=inner.pq.M, pq_nbits=inner.pq.nbits)
    raise InputError(f"unsupported faiss index type {type(inner).__name__}")


def add_vectors(index: faiss.Index, ids: np.ndarray, vectors: np.ndarray) -> None:
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))


def can_remove(plan: IndexPlan) -> bool:
    """HNSW graphs cannot drop nodes; the store rebuilds them instead."""
    return plan.kind != "hnsw"


def remove_vectors(index: faiss.Index, ids: np.ndarray) -> None:
    index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))


def search(
    index: faiss.Index,
    queries: np.ndarray,
    k: int,
    options: IndexOptions,
    *,
    widen: int = 1,
    allowed_ids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (scores, ids) per query; ids are -1 where fewer were found.

    ``widen`` multiplies how much of an approximate index is explored (IVF lists probed; HNSW already
    widens with k), for callers that retry when too few candidates survived their filters.
    ``allowed_ids`` restricts the search to those ids (exact for flat).
    """
    k = max(1, min(k, index.ntotal))
    selector = faiss.IDSelectorBatch(np.asarray(allowed_ids, dtype=np.int64)) if allowed_ids is not None else None
    plan = plan_of(index)
    if plan.kind == "hnsw":
        params: Any = faiss.SearchParametersHNSW(efSearch=max(options.ef_search * widen, k))
    elif plan.kind == "ivfpq":
        params = faiss.SearchParametersIVF(nprobe=min(options.nprobe * widen, plan.nlist))
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    return index.search(queries, k, params=params)


def save_index(index: faiss.Index, path: str | os.PathLike[str]) -> None:
    """Write the index atomically: a crash leaves the previous file or the new one, never half of one."""
    with atomic_open(path, "wb") as handle:
        faiss.write_index(index, faiss.PyCallbackIOWriter(handle.write))


def load_index(path: str | os.PathLike[str]) -> faiss.Index | None:
    """The saved index, or None when it is missing or unreadable (it is a cache: rebuild it)."""
    if not Path(path).is_file():
        return None
    try:
        return faiss.read_index(str(path))
    except RuntimeError:
        return None


def index_bytes(index: faiss.Index) -> int:
    """Serialised size of the index, a fair measure of the memory it holds."""
    size = 0

    def count(chunk: bytes) -> int:
        nonlocal size
        size += len(chunk)
        return len(chunk)

    faiss.write_index(index, faiss.PyCallbackIOWriter(count))
    return size


def normalise(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Check shape and values, then scale rows to unit length so inner product is cosine."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dim:
        raise InputError(f"vectors must have shape (n, {dim}); got {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise InputError("vectors contain NaN or infinite values")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InputError("vectors contain an all-zero row, which has no direction to search by")
    return np.ascontiguousarray(array / norms, dtype=np.float32)
