"""What every recipe is: its settings (a validated dataclass, saved as ``run.json``), how it prepares a
model and a training objective, and how it exports the trained model.

A recipe's fields are its whole configuration: the command line is derived from them
(``cli.recipe_flags``), ``run.json`` is their ``to_dict``, and ``--config run.json`` reads them back. A
recipe validates only its own fields. Adding a recipe is one module with one subclass, plus one line in
``recipes.RECIPES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from torch import nn

from vlmkit.checkpoints import save_pretrained
from vlmkit.config.base import ConfigBase, option
from vlmkit.data.sources import DataMode
from vlmkit.errors import ConfigError
from vlmkit.training.objective import Prepared
from vlmkit.training.trainer import TrainConfig


@dataclass
class Recipe(ConfigBase):
    """The settings every recipe shares; subclasses add their own and implement ``prepare``."""

    name: ClassVar[str]
    summary: ClassVar[str]

    data: str = option(
        "", "training data: a dataset folder, or WebDataset shards ('shards/train-{000000..000009}.tar')"
    )
    eval_data: str | None = option(None, "held-out data for periodic evaluation (folder or shards)")
    data_mode: DataMode = option(
        "auto", "memory: decode every image once; stream: decode per batch (auto: memory when it fits)"
    )
    shuffle_buffer: int = option(10_000, "samples a shard stream holds and shuffles at a time", research=True)
    train: TrainConfig = option(factory=TrainConfig, cli=False)

    def validate(self, where: str) -> None:
        if not self.data:
            raise ConfigError(f"{where}.data: a dataset folder or shards are required")
        if self.shuffle_buffer < 1:
            raise ConfigError(f"{where}.shuffle_buffer: must be positive, got {self.shuffle_buffer}")

    def prepare(self) -> Prepared:
        """The model to train, its objective, its batches and its held-out evaluation."""
        raise NotImplementedError

    def export(self, model: nn.Module, run_dir: Path) -> Path:
        """The trained model as a loadable directory, ``run_dir/model``."""
        return save_pretrained(model, run_dir / "model")
