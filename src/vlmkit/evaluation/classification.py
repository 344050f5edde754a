"""Zero-shot classification accuracy from a logits matrix.

Top-K accuracy is the fraction of images whose true class is among the K highest-scoring classes.
It is recall@K with exactly one positive per query, so it shares the ranking (and the pessimistic
tie rule) of :mod:`vlmkit.evaluation.retrieval`: a wrong class scoring exactly as high as the true
class is counted as ranked above it. A model that returns constant logits therefore scores 0, not
an accuracy that depends on the sort order of the backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vlmkit.errors import InputError
from vlmkit.evaluation.arrays import to_numpy
from vlmkit.evaluation.retrieval import best_positive_ranks, recall_from_ranks


def topk_accuracy(logits: Any, targets: Any, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """``{K: accuracy}`` for (images x classes) ``logits`` and integer class ``targets`` (torch or numpy).

    A K larger than the number of classes is allowed and gives 1.0, as every class is in the top K.
    """
    scores = to_numpy(logits, "logits", 2)
    labels = to_numpy(targets, "targets", 1)
    if labels.dtype.kind not in "iu":
        raise InputError(f"targets: expected integer class indices, got dtype {labels.dtype}")
    if labels.shape[0] != scores.shape[0]:
        raise InputError(f"targets: expected {scores.shape[0]} entries (one per logits row), got {labels.shape[0]}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise InputError(f"targets: class indices must lie in [0, {scores.shape[1]})")
    ranks = best_positive_ranks(scores, labels.astype(np.int64).reshape(-1, 1).tolist())
    return recall_from_ranks(ranks, ks)
