"""Small random collections for the search store tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from vlmkit.search.store import ItemMeta

DIM = 16


def _unit(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _items(start: int, count: int, folder: str = "photos") -> list[ItemMeta]:
    """Items whose width, mtime and folder vary with their number, so filters have something to cut."""
    return [
        ItemMeta(
            path=f"{folder}/{n % 3}/img{n}.jpg",
            sha256=f"hash{n}",
            size=1000 + n,
            mtime=float(n),
            width=n % 50 * 10,
            height=100,
        )
        for n in range(start, start + count)
    ]


@pytest.fixture
def unit() -> Callable[[int, int], np.ndarray]:
    """unit(rows, seed): random unit vectors of dimension DIM."""
    return _unit


@pytest.fixture
def make_items() -> Callable[..., list[ItemMeta]]:
    """make_items(start, count, folder="photos"): items numbered start.. with varied facts."""
    return _items


@pytest.fixture(autouse=True, scope="session")
def _single_faiss_thread() -> None:
    """Tiny indexes gain nothing from threads, and OpenMP spinning on a shared machine costs seconds."""
    import faiss

    faiss.omp_set_num_threads(1)
