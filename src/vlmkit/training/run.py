"""``run``: one training run from a recipe, the one sequence the CLI, the demo and the tests share.

prepare -> Trainer -> ``run.json`` -> fit -> export. ``run.json`` holds the recipe's name and every
setting, so ``vlmkit train NAME --config RUN/run.json`` reproduces the run; ``--resume`` continues it
from its last checkpoint, exactly.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from vlmkit.errors import ConfigError
from vlmkit.files import atomic_write_json
from vlmkit.training.checkpointing import checkpoints_to_resume
from vlmkit.training.distributed import cleanup, init_distributed
from vlmkit.training.recipes import RECIPES, Recipe
from vlmkit.training.trainer import Trainer

RUN_CONFIG = "run.json"


@dataclass
class RunResult:
    """What a finished run left: the trained model (exported to ``model_dir`` on rank 0), the step it
    reached, and its last held-out metrics."""

    model: nn.Module
    step: int
    metrics: dict[str, float]
    model_dir: Path | None


def run(
    recipe: Recipe, out: str | Path, device: str = "auto", resume: bool = False, until: int | None = None
) -> RunResult:
    """Train ``recipe`` into run directory ``out`` on ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``;
    under torchrun each process takes the GPU of its local rank). ``until`` stops after that step
    without exporting, as an interruption would."""
    out = Path(out)
    name = type(recipe).__name__
    recipe.validate(name)  # a recipe built in Python has not been through from_dict's checks
    recipe.train.validate(f"{name}.train")
    context = init_distributed(device)
    try:
        # Everything that can be refused is refused before any data is read or model built.
        recipe.train.micro_batch(context.world_size)
        check_run_dir(out, recipe, resume)
        prepared = recipe.prepare()
        trainer = Trainer(prepared, recipe.train, out, context, resume=resume)
        if context.is_main:
            atomic_write_json(out / RUN_CONFIG, run_config(recipe))
        metrics = trainer.fit(until=until)
        done = trainer.step >= recipe.train.steps
        model_dir = recipe.export(prepared.model, out) if context.is_main and done else None
        if context.is_main:
            plot_curves(out)
    finally:
        cleanup()
    return RunResult(prepared.model, trainer.step, metrics, model_dir)


RESUMABLE_CHANGES = {
    "eval_data",
    "eval_images",
    "train.log_every",
    "train.eval_every",
    "train.save_every",
    "train.keep_last",
}
"""Settings a resumed run may change: what is logged, evaluated and kept, never what is trained."""


def check_run_dir(out: Path, recipe: Recipe, resume: bool) -> None:
    """A run directory with checkpoints continues only with --resume, and only with its own settings."""
    checkpoints_to_resume(out / "checkpoints", resume)
    saved_file = out / RUN_CONFIG
    if not (resume and saved_file.exists()):
        return
    saved, asked = _flat(json.loads(saved_file.read_text(encoding="utf-8"))), _flat(run_config(recipe))
    changed = sorted(k for k in set(saved) | set(asked) if saved.get(k) != asked.get(k) and k not in RESUMABLE_CHANGES)
    if changed:
        key = changed[0]
        raise ConfigError(
            f"--resume: {out} was trained with {key}={saved.get(key)!r}, this run asks for {asked.get(key)!r}; "
            "a resumed run keeps its settings (start a new --out to change them)"
        )


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and key == "train":
            flat.update(_flat(value, f"{key}."))
        else:
            flat[prefix + key] = value
    return flat


def run_config(recipe: Recipe) -> dict[str, Any]:
    """The recipe's name and full settings, as JSON."""
    return json.loads(json.dumps({"recipe": recipe.name, **recipe.to_dict()}, default=str))


def recipe_from_config(name: str, settings: dict[str, Any], where: str) -> Recipe:
    """Recipe ``name`` from saved settings (a ``run.json``, whose ``recipe`` must then be ``name``)."""
    settings = dict(settings)
    saved = settings.pop("recipe", name)
    if saved != name:
        raise ConfigError(f"{where}: a {saved!r} run's settings cannot configure recipe {name!r}")
    return RECIPES[name].from_dict(settings, where=where)


def plot_curves(out: Path) -> None:
    """``metrics.png`` beside ``metrics.jsonl``, when matplotlib (the ``plot`` extra) is installed."""
    if importlib.util.find_spec("matplotlib") is None:
        print(f"{out}: metrics.png not drawn (pip install 'vlmkit[plot]'); `vlmkit plot {out}` draws it later")
        return
    from vlmkit.training.metrics import plot_metrics

    plot_metrics(out)
