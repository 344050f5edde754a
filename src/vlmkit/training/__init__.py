"""Training: recipes (``RECIPES``, by the name ``vlmkit train NAME`` takes) run by one trainer.

``run(recipe, out)`` is the one sequence every caller uses: prepare, train, write ``run.json``, export.
"""

from vlmkit.training.recipes import RECIPES, Recipe
from vlmkit.training.run import RunResult, run
from vlmkit.training.trainer import TrainConfig

__all__ = ["RECIPES", "Recipe", "RunResult", "TrainConfig", "run"]
