"""Text queries over an index that holds texts: BM25 over the texts and the embeddings, fused by rank.

Two rankings answer a text query: BM25 over the items' texts (SQLite FTS5: exact words, names, numbers) and
cosine similarity of the embeddings (what the page or picture looks like it is about). Their scores live on
unrelated scales, so they are fused by reciprocal rank (Cormack, Clarke and Buettcher, SIGIR 2009): an item
scores ``sum over rankings of 1 / (RRF_K + rank)``, with the paper's ``RRF_K = 60``, and an item missing from a
ranking gets nothing from it. A photo without text can still win through its embedding; a page matching both
beats one matching either. The text ranking holds only the texts printing the query as a phrase, or where none
does, those holding all its words (``texts.ranking``): fused by rank, a page that merely shares words with the
query would otherwise beat the page that prints it whenever it looks a little more like the query.

``mode`` picks the ranking: ``hybrid`` (the fusion), ``text`` (BM25 alone; the score is BM25's relevance) or
``image`` (the embeddings alone; the score is the cosine). An index without any text answers ``hybrid`` by the
embeddings alone, exactly as before documents existed. A hit on an item with a text names the line of it
that best matches the query's words, and that line's box.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from vlmkit.errors import InputError
from vlmkit.search.hits import Hit, hits_of
from vlmkit.search.metadata import Filters
from vlmkit.search.texts import best_line, terms

if TYPE_CHECKING:  # the CLI reads MODES to build its parser, which must not need faiss (an optional extra)
    from vlmkit.search.store import SearchStore

MODES: tuple[str, ...] = ("hybrid", "text", "image")
RRF_K = 60
DEPTH = 100  # candidates taken from each ranking (at least k): a rank below it adds under 1/160 to a score


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise InputError(f"search mode must be one of {', '.join(MODES)}; got {mode!r}")


def reciprocal_rank_fusion(rankings: Iterable[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """``(id, fused score)`` best first; ties keep the order of first appearance (earlier rankings first)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def text_hits(
    store: SearchStore,
    query: str,
    vector: np.ndarray | None,
    k: int,
    *,
    mode: str = "hybrid",
    min_score: float | None = None,
    filters: Filters | None = None,
) -> list[Hit]:
    """The best ``k`` hits for the text ``query`` (``vector``: its embedding, unless ``mode`` is ``text``);
    ``min_score`` applies to the hits' scores, whichever ranking made them."""
    check_mode(mode)
    meta, filters = store.metadata, filters or Filters()
    has_texts = meta.has_texts()
    if mode == "text" and not has_texts:
        raise InputError(f"the index at {store.directory} holds no texts to search; index PDFs, or images with --ocr")
    words = terms(query)
    if mode == "image" or not has_texts:
        hits = store.search(vector, k, min_score=min_score, filters=filters)[0]  # type: ignore[arg-type]
    else:
        depth = max(k, DEPTH)
        ranked = meta.text_ranking(query, depth, filters)
        if mode == "hybrid":
            by_image = store.search(vector, depth, filters=filters)[0]  # type: ignore[arg-type]
            ranked = reciprocal_rank_fusion([[i for i, _ in ranked], [hit.id for hit in by_image]])
        hits = hits_of(ranked, meta.rows([i for i, _ in ranked]), k, min_score)
    return with_lines(store, hits, words) if has_texts else hits


def with_lines(store: SearchStore, hits: list[Hit], words: Sequence[str]) -> list[Hit]:
    """``hits`` with the line of each one's text that best matches ``words``, and its box."""
    lines = store.metadata.lines([hit.id for hit in hits])
    found = {i: best_line(candidates, words) for i, candidates in lines.items()}
    return [
        dataclasses.replace(hit, line=line.text, box=line.box) if (line := found.get(hit.id)) is not None else hit
        for hit in hits
    ]
