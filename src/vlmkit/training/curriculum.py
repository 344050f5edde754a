"""A curriculum over scene size: training items drawn from scenes of one object first, then of at most two,
and so on until the largest, over a schedule of optimizer steps.

Why: the pretrained ``vlmkit:minilm`` decoder learns to read a single object's colour from image tokens in
100 steps, but trained on scenes of 1-6 objects from the start it learns nothing about the image and settles
on the answer prior (docs/results.md, "Reading the image"). A single object fixes the answer from the image
alone; a scene of several needs the lookup as well. The curriculum teaches the reading first.

The schedule cuts ``steps`` into one stage per distinct object count, in order; stage ``k`` draws from every
record with at most that stage's count (earlier lessons stay in the mix), and the last stage (the whole
dataset) continues past the schedule. Each stage has its own sequence of draws, epoch after epoch of a
permutation of its pool seeded by (seed, stage, pool epoch), and micro-batch ``m`` of a run is a slice of
that sequence. So the items of a micro-batch are a function of (seed, m) alone: a resumed run asks for
exactly what the uninterrupted run drew, and every rank agrees without talking.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vlmkit.data.records import Record
from vlmkit.data.sampling import epoch_order
from vlmkit.errors import ConfigError, InputError

CURRICULA = ("objects",)


def object_count(record: Record) -> int:
    return len(record.objects or [])


class ObjectCurriculum:
    """Which records micro-batch ``m`` draws, for scenes that grow in size over ``steps`` optimizer steps."""

    def __init__(self, sizes: Sequence[int], steps: int, seed: int, grad_accum: int = 1) -> None:
        if steps < 1:
            raise ConfigError(f"curriculum_steps: expected at least 1 step, got {steps}")
        if grad_accum < 1:
            raise ConfigError(f"grad_accum: expected at least 1, got {grad_accum}")
        if not sizes:
            raise InputError("curriculum: no records to order")
        self.levels = sorted({max(1, size) for size in sizes})  # an empty scene goes with the single objects
        self.pools = [torch.tensor([i for i, size in enumerate(sizes) if size <= level]) for level in self.levels]
        self.steps, self.seed, self.grad_accum = steps, seed, grad_accum
        self._order: tuple[tuple[int, int], torch.Tensor] | None = None  # the pool epoch in use, computed once

    @classmethod
    def of_records(cls, records: Sequence[Record], steps: int, seed: int, grad_accum: int = 1) -> ObjectCurriculum:
        sizes = [object_count(r) for r in records]
        if not any(sizes):
            raise InputError("curriculum objects: no record has objects to count (ShapesWorld-style `objects`)")
        return cls(sizes, steps, seed, grad_accum)

    def stage(self, step: int) -> int:
        """The stage optimizer step ``step`` (from 0) trains in."""
        return min(len(self.levels) - 1, step * len(self.levels) // self.steps)

    def limit(self, step: int) -> int:
        """The most objects a scene drawn at ``step`` has."""
        return self.levels[self.stage(step)]

    def _first_step(self, stage: int) -> int:
        return -(-stage * self.steps // len(self.levels))  # the smallest step with stage(step) >= stage

    def items(self, micro_step: int, micro_batch: int, rank: int, world_size: int) -> list[int]:
        """Records of micro-batch ``micro_step`` (counted over the whole run) for ``rank``."""
        stage = self.stage(micro_step // self.grad_accum)
        local = micro_step - self._first_step(stage) * self.grad_accum
        pool = self.pools[stage]
        start = (local * world_size + rank) * micro_batch
        items = []
        for position in range(start, start + micro_batch):
            pool_epoch, offset = divmod(position, len(pool))
            items.append(int(pool[self._permutation(stage, pool_epoch)[offset]]))
        return items

    def _permutation(self, stage: int, pool_epoch: int) -> torch.Tensor:
        key = (stage, pool_epoch)
        if self._order is None or self._order[0] != key:
            # One epoch index per (stage, pool epoch), so no two stages share a permutation.
            self._order = (key, epoch_order(len(self.pools[stage]), self.seed, pool_epoch * len(self.levels) + stage))
        return self._order[1]
