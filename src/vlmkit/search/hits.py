"""A search result (``Hit``) and how a store turns scored candidates into the best ``k`` of them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vlmkit.search.metadata import Row


@dataclass(frozen=True)
class Hit:
    """One search result; ``score`` is the cosine similarity to the query."""

    id: int
    score: float
    path: str
    frame_time: float | None
    width: int | None
    height: int | None
    tags: dict[str, float]


def hits_of(
    candidates: Iterable[tuple[Any, Any]], rows: Mapping[int, Row], k: int, min_score: float | None
) -> list[Hit]:
    """Best-first hits from (id, score) pairs, keeping only ids with a row and scores >= min_score."""
    hits = [
        Hit(int(i), float(s), r.path, r.frame_time, r.width, r.height, r.tags)
        for i, s in candidates
        if (r := rows.get(int(i))) is not None and (min_score is None or s >= min_score)
    ]
    hits.sort(key=lambda hit: -hit.score)
    return hits[:k]
