"""A search result (``Hit``) and how a store turns scored candidates into the best ``k`` of them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vlmkit.search.metadata import Row
from vlmkit.search.texts import Box


@dataclass(frozen=True)
class Hit:
    """One search result. ``score`` is what the hits were ranked by: the cosine similarity to the query,
    or for a text query over page texts the fused score (``fusion``). ``page`` is a document's page (1-based);
    ``line`` the line of the item's text that best matches a text query, ``box`` where it is on the page."""

    id: int
    score: float
    path: str
    frame_time: float | None
    width: int | None
    height: int | None
    tags: dict[str, float]
    page: int | None = None
    line: str | None = None
    box: Box | None = None


def hits_of(
    candidates: Iterable[tuple[Any, Any]], rows: Mapping[int, Row], k: int, min_score: float | None
) -> list[Hit]:
    """Best-first hits from (id, score) pairs, keeping only ids with a row and scores >= min_score."""
    hits = [
        Hit(int(i), float(s), r.path, r.frame_time, r.width, r.height, r.tags, r.page)
        for i, s in candidates
        if (r := rows.get(int(i))) is not None and (min_score is None or s >= min_score)
    ]
    hits.sort(key=lambda hit: -hit.score)
    return hits[:k]
