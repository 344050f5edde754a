"""Recall@K for retrieval from a similarity matrix, with several correct candidates per query.

Definitions. For a query ``q`` with score row ``s`` over the candidates and a non-empty set ``P`` of
positive (correct) candidates, let ``b = max(s[p] for p in P)`` be the score of the best positive.
The **rank** of the query (0-based) is the number of *non-positive* candidates scoring ``>= b``:

    rank(q) = |{c not in P : s[c] >= b}|

so the query counts at ``K`` (recall@K) when any positive lands in the top ``K``, i.e. ``rank < K``.
Recall@K is the fraction of queries that count. Mean and median rank are reported 1-based, as
open_clip does (``mean = mean(rank) + 1``, ``median = floor(median(rank)) + 1``).

Ties are broken pessimistically: a non-positive candidate tied with the best positive is placed
before it. open_clip's ``get_clip_metrics`` ranks with ``torch.argsort(logits, descending=True)``
and takes the position of the single diagonal ground truth; that sort is not stable, so its tie
order depends on the backend and is not a rule one can reproduce. Without ties the two agree
exactly; with ties this rule gives the lowest recall any tie order could give, which is the value
that cannot be gamed by a model that outputs constant scores. Positives tied with each other do
not hurt: only the best positive's position matters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlmkit.errors import InputError
from vlmkit.evaluation.arrays import to_numpy

_ROWS_PER_CHUNK = 1024  # bounds the temporary boolean matrix to rows x candidates bytes


def best_positive_ranks(similarity: Any, positives: Sequence[Iterable[int]]) -> np.ndarray:
    """0-based rank of the best positive of every query (see the module docstring for the tie rule).

    ``similarity`` is (queries x candidates), torch or numpy; ``positives[q]`` holds the candidate
    indices that are correct for query ``q`` (duplicates are ignored).
    """
    scores = to_numpy(similarity, "similarity", 2)
    num_queries, num_candidates = scores.shape
    if len(positives) != num_queries:
        raise InputError(f"positives: expected one entry per query ({num_queries}), got {len(positives)}")
    query_index, candidate_index = _flatten_positives(positives, num_candidates)
    positive_scores = scores[query_index, candidate_index]
    best = np.full(num_queries, -np.inf, dtype=np.result_type(scores.dtype, np.float32))
    np.maximum.at(best, query_index, positive_scores)
    # Positives at the best score are among the ">= best" candidates; subtract them back out.
    positives_at_best = np.bincount(
        query_index, weights=positive_scores >= best[query_index], minlength=num_queries
    ).astype(np.int64)
    at_least_best = np.empty(num_queries, dtype=np.int64)
    for start in range(0, num_queries, _ROWS_PER_CHUNK):
        stop = start + _ROWS_PER_CHUNK
        at_least_best[start:stop] = (scores[start:stop] >= best[start:stop, None]).sum(axis=1)
    return at_least_best - positives_at_best


def recall_from_ranks(ranks: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """Recall@K for each K: the fraction of 0-based ranks below K."""
    if ranks.size == 0:
        raise InputError("similarity: no queries to score")
    for k in ks:
        if k < 1:
            raise InputError(f"ks: every K must be >= 1, got {k}")
    return {int(k): float(np.mean(ranks < k)) for k in ks}


def recall_at_k(
    similarity: Any, positives: Sequence[Iterable[int]], ks: Sequence[int] = (1, 5, 10)
) -> dict[int, float]:
    """Recall@K of (queries x candidates) scores: a query counts if any positive is in its top K."""
    return recall_from_ranks(best_positive_ranks(similarity, positives), ks)


@dataclass(frozen=True)
class DirectionResult:
    """Recall@K and 1-based mean/median rank for one retrieval direction."""

    recall: dict[int, float]
    mean_rank: float
    median_rank: float

    @classmethod
    def from_ranks(cls, ranks: np.ndarray, ks: Sequence[int]) -> DirectionResult:
        return cls(
            recall=recall_from_ranks(ranks, ks),
            mean_rank=float(ranks.mean()) + 1.0,
            median_rank=float(np.floor(np.median(ranks))) + 1.0,
        )


@dataclass(frozen=True)
class ImageTextRetrieval:
    """Both directions of image<->caption retrieval (image_to_text: images are the queries)."""

    image_to_text: DirectionResult
    text_to_image: DirectionResult

    def as_dict(self) -> dict[str, float]:
        """Flat ``{"i2t_R@1": ..., "t2i_mean_rank": ...}`` view for reports and logs."""
        flat: dict[str, float] = {}
        for prefix, result in (("i2t", self.image_to_text), ("t2i", self.text_to_image)):
            flat.update({f"{prefix}_R@{k}": v for k, v in result.recall.items()})
            flat[f"{prefix}_mean_rank"] = result.mean_rank
            flat[f"{prefix}_median_rank"] = result.median_rank
        return flat


def image_text_retrieval(
    similarity: Any, caption_to_image: Sequence[int], ks: Sequence[int] = (1, 5, 10)
) -> ImageTextRetrieval:
    """Retrieval metrics for the usual layout: N images, each described by one or more captions.

    ``similarity`` is (images x captions); ``caption_to_image[j]`` is the image caption ``j``
    describes. Text-to-image has one positive per caption; image-to-text counts an image as found
    at K when any of its captions is in its top K (the COCO / Flickr30k protocol).
    """
    scores = to_numpy(similarity, "similarity", 2)
    num_images, num_captions = scores.shape
    owners = np.asarray(caption_to_image, dtype=np.int64)
    if owners.shape != (num_captions,):
        raise InputError(f"caption_to_image: expected one image index per caption ({num_captions}), got {owners.shape}")
    if owners.size and (owners.min() < 0 or owners.max() >= num_images):
        raise InputError(f"caption_to_image: image indices must lie in [0, {num_images})")
    captions_of = [[] for _ in range(num_images)]
    for caption, image in enumerate(owners.tolist()):
        captions_of[image].append(caption)
    lonely = [image for image, captions in enumerate(captions_of) if not captions]
    if lonely:
        raise InputError(f"caption_to_image: image {lonely[0]} has no caption (every image needs one)")
    i2t = best_positive_ranks(scores, captions_of)
    t2i = best_positive_ranks(scores.T, [[image] for image in owners.tolist()])
    return ImageTextRetrieval(DirectionResult.from_ranks(i2t, ks), DirectionResult.from_ranks(t2i, ks))


def _flatten_positives(positives: Sequence[Iterable[int]], num_candidates: int) -> tuple[np.ndarray, np.ndarray]:
    """(query, candidate) index pairs of all positives, deduplicated, with range checks."""
    query_index: list[int] = []
    candidate_index: list[int] = []
    for query, candidates in enumerate(positives):
        unique = sorted({int(c) for c in candidates})
        if not unique:
            raise InputError(f"positives[{query}]: every query needs at least one positive candidate")
        if unique[0] < 0 or unique[-1] >= num_candidates:
            raise InputError(f"positives[{query}]: candidate indices must lie in [0, {num_candidates})")
        query_index.extend([query] * len(unique))
        candidate_index.extend(unique)
    return np.asarray(query_index, dtype=np.int64), np.asarray(candidate_index, dtype=np.int64)
