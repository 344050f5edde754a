"""The contract between a recipe and the trainer.

A recipe's ``prepare`` returns a ``Prepared``: the model to train and export, its ``Objective`` (the loss,
and any module only training needs, such as the caption-word head or a distillation teacher), the
``BatchSource`` that serves micro-batches by (epoch, index), and an optional held-out evaluation. The
trainer wraps model and objective together for DDP and the optimizer, checkpoints both, and exports only
the model: a training-only module can never leak into a saved model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn


@dataclass
class ObjectiveOutput:
    """The loss to minimise and extra scalars to log (e.g. the temperature)."""

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


class Objective(nn.Module):
    """A loss over the model's outputs; its own parameters (if any) train with the model but are not
    exported. Subclasses implement ``forward(model, batch)``."""

    def forward(self, model: nn.Module, batch: Any) -> ObjectiveOutput:  # pragma: no cover - abstract
        raise NotImplementedError


class BatchSource(Protocol):
    """Serves micro-batches on demand, deterministically in (epoch, index), so resume is exact."""

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        """Micro-batches per epoch of the global data (each of ``micro_batch`` items on every rank)."""

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> Any:
        """This rank's share of micro-batch ``index`` of ``epoch`` (a ``training.batches`` dataclass)."""


@dataclass
class Prepared:
    """What a recipe hands the trainer."""

    model: nn.Module
    objective: Objective
    batches: BatchSource
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None  # held-out metrics, rank 0 only
