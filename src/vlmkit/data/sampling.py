"""Which items a training step sees: the epoch order, and each process's share of a batch.

Data position is part of a run's state. An epoch's order is a function of (seed, epoch) alone, and a
micro-batch is a slice of it, so a resumed run asks for exactly the batches the uninterrupted run
drew, without replaying the ones before, and every rank agrees on the order without talking.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def _permutation(count: int, seed: int, epoch: int, window: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch + window * 1_000_000_007)
    return torch.randperm(count, generator=generator)


def epoch_order(count: int, seed: int, epoch: int, window: int | None = None) -> torch.Tensor:
    """Positions ``0..count-1`` in the order of ``epoch``: the same on every rank, different each epoch.

    With ``window`` (a stream's shuffle buffer) the positions are cut into consecutive windows and each
    is permuted on its own, so a stream needs to hold one window at a time. A window that covers every
    position is the plain permutation of the whole set.
    """
    if window is None or window >= count:
        return _permutation(count, seed, epoch)
    parts = [
        start + _permutation(min(window, count - start), seed, epoch, w)
        for w, start in enumerate(range(0, count, window))
    ]
    return torch.cat(parts)


def shard(order: torch.Tensor, index: int, micro_batch: int, rank: int, world_size: int) -> list[int]:
    """Items of micro-batch ``index`` for ``rank``: consecutive slices of one global batch per rank."""
    start = (index * world_size + rank) * micro_batch
    return order[start : start + micro_batch].tolist()


class Draws:
    """The items of each micro-batch, from an epoch's order (``order(epoch)``) computed once per epoch: batches
    are drawn epoch after epoch, and an order over a large set costs a permutation of all of it."""

    def __init__(self, order: Callable[[int], torch.Tensor]) -> None:
        self.order = order
        self._current: tuple[int, torch.Tensor] | None = None

    def items(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> list[int]:
        if self._current is None or self._current[0] != epoch:
            self._current = (epoch, self.order(epoch))
        return shard(self._current[1], index, micro_batch, rank, world_size)
