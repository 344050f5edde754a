"""Speed, recall and size of the search index kinds, measured against exact search in the same run.

For each collection size, random unit vectors are indexed with each kind the store can choose (flat,
HNSW, IVF-PQ, built by ``vlmkit.search.vectors`` exactly as the store builds them) and queried with
other random unit vectors, one query at a time. Recall@10 is the overlap with exact top-10.

Random vectors are the hardest case for approximate search: their neighbours are barely closer than
anything else, unlike real embeddings, which cluster. ``--data clustered`` draws points around shared
centres instead, which is closer to how embeddings of a photo collection sit.

    python benchmarks/search_vectors.py                         # 100k x 512
    python benchmarks/search_vectors.py --data clustered         # n/100 clusters, closer to real embeddings
    python benchmarks/search_vectors.py --sizes 1000000 --dim 256 --kinds flat ivfpq
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Iterator

import faiss
import numpy as np

from vlmkit.search import vectors as vec
from vlmkit.search.vectors import IndexOptions

K = 10


def unit_vectors(rows: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((rows, dim), dtype=np.float32)
    for start in range(0, rows, 100_000):  # in chunks: no float64 copy of a 1M x dim array
        block = rng.standard_normal((min(100_000, rows - start), dim), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def clustered_vectors(rows: int, dim: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """Points scattered around shared centres (noise norm ~0.6), closer to how real embeddings sit."""
    rng = np.random.default_rng(seed)
    out = np.empty((rows, dim), dtype=np.float32)
    for start in range(0, rows, 100_000):
        count = min(100_000, rows - start)
        noise = rng.standard_normal((count, dim), dtype=np.float32) * np.float32(0.6 / np.sqrt(dim))
        block = centres[rng.integers(0, len(centres), count)] + noise
        out[start : start + count] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def latency_ms(search_one: Callable[[np.ndarray], np.ndarray], queries: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Top-k ids per query, and p50 / p99 single-query latency in milliseconds."""
    found, times = [], []
    for query in queries:
        start = time.perf_counter()
        found.append(search_one(query[None]))
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1000
    return np.stack(found), float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def search_settings(kind: str, options: IndexOptions) -> list[tuple[str, IndexOptions]]:
    if kind == "hnsw":
        return [(f"efSearch={e}", dataclasses.replace(options, ef_search=e)) for e in (16, 64, 256, 1024)]
    if kind == "ivfpq":
        return [(f"nprobe={p}", dataclasses.replace(options, nprobe=p)) for p in (8, 32, 128, 512)]
    return [("exact", options)]


def build(kind: str, data: np.ndarray, options: IndexOptions) -> tuple[faiss.Index, float]:
    """The index the store would build for this kind, and seconds taken (training included)."""
    n, dim = data.shape
    start = time.perf_counter()
    plan = vec.plan_index(n, dim, dataclasses.replace(options, kind=kind))
    sample = None
    if vec.training_size(plan):
        sample = data[np.random.default_rng(2).choice(n, min(n, vec.training_size(plan)), replace=False)]
    index = vec.new_index(plan, dim, options, sample)
    vec.add_vectors(index, np.arange(n, dtype=np.int64), data)
    return index, time.perf_counter() - start


def measure(
    index: faiss.Index, kind: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray, options: IndexOptions
) -> Iterator[tuple[str, float, float, float]]:
    """(setting, p50 ms, p99 ms, recall@10) per search setting of this kind, on one thread.

    One thread, because one query is too little work to split: OpenMP start-up (and spinning, on a
    busy machine) costs more than it saves. A server gets its parallelism from concurrent requests.
    """

    def plain(q: np.ndarray, o: IndexOptions) -> np.ndarray:
        return vec.search(index, q, K, o)[1][0]

    def reranked(q: np.ndarray, o: IndexOptions) -> np.ndarray:  # what the store does for IVF-PQ
        candidates = vec.search(index, q, K * o.rerank, o)[1][0]
        candidates = candidates[candidates >= 0]
        return candidates[np.argsort(-(data[candidates] @ q[0]))[:K]]

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    for label, opts in search_settings(kind, options):
        found, p50, p99 = latency_ms(lambda q, o=opts: plain(q, o), queries)
        yield label, p50, p99, recall(found, truth)
        if kind == "ivfpq":
            found, p50, p99 = latency_ms(lambda q, o=opts: reranked(q, o), queries)
            yield f"{label} +rerank x{opts.rerank}", p50, p99, recall(found, truth)
    faiss.omp_set_num_threads(threads)


ROW = "{:>9} {:>4} {:<6} {:<24} {:>8} {:>8} {:>7} {:>7} {:>6}"


def bench_size(n: int, dim: int, kinds: list[str], nq: int, options: IndexOptions, clustered: bool) -> None:
    if clustered:
        centres = unit_vectors(max(1, n // 100), dim, 3)
        data, queries = clustered_vectors(n, dim, 0, centres), clustered_vectors(nq, dim, 1, centres)
    else:
        data, queries = unit_vectors(n, dim, 0), unit_vectors(nq, dim, 1)
    truth = None
    for kind in ["flat", *[k for k in kinds if k != "flat"]]:
        index, build_s = build(kind, data, options)
        mib = vec.index_bytes(index) / 2**20
        if truth is None:
            truth = vec.search(index, queries, K, options)[1]
        for label, p50, p99, rec in measure(index, kind, data, queries, truth, options):
            cells = (f"{build_s:.1f}", f"{mib:.1f}", f"{p50:.2f}", f"{p99:.2f}", f"{rec:.3f}")
            print(ROW.format(n, dim, kind, label, *cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivfpq"], choices=["flat", "hnsw", "ivfpq"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--data", choices=["random", "clustered"], default="random", help="uniform on the sphere, or n/100 clusters"
    )
    parser.add_argument("--threads", type=int, default=0, help="faiss threads for building (0: all)")
    args = parser.parse_args()
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    options = IndexOptions()
    print(
        f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} build threads, 1 query thread; "
        f"HNSW M={options.hnsw_m} efConstruction={options.ef_construction}; "
        f"IVF-PQ nlist=4*sqrt(n), m=dim/8, 8 bits; k={K}; data: {args.data}"
    )
    header = ROW.format("n", "dim", "kind", "setting", "build s", "MiB", "p50 ms", "p99 ms", "R@10")
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        bench_size(n, args.dim, args.kinds, args.queries, options, args.data == "clustered")


if __name__ == "__main__":
    main()
