"""``vlmkit train NAME`` (one subcommand per registered recipe) and ``vlmkit plot``; under torchrun too."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vlmkit.cli import add_device_option
from vlmkit.cli.recipe_flags import add_recipe_flags, name_flags, settings_from_flags
from vlmkit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    from vlmkit.training.recipes import RECIPES

    train = subparsers.add_parser("train", help=f"train a model ({', '.join(RECIPES)})")
    recipes = train.add_subparsers(dest="recipe", metavar="RECIPE", required=True)
    for name, recipe in RECIPES.items():
        parser = recipes.add_parser(name, help=recipe.summary, description=(recipe.__doc__ or "").strip())
        add_recipe_flags(parser, recipe)
        parser.add_argument("--config", type=Path, help="a run.json to start from (flags override it)")
        parser.add_argument("--out", required=True, type=Path, help="run directory")
        parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
        add_device_option(parser)
        parser.set_defaults(handler=run_train)

    plot = subparsers.add_parser("plot", help="plot a training run's metrics to PNG")
    plot.add_argument("run_dir", type=Path)
    plot.add_argument("--out", type=Path, help="output PNG (default: RUN_DIR/metrics.png)")
    plot.set_defaults(handler=run_plot)


def recipe_from_args(args: argparse.Namespace):
    from vlmkit.training.recipes import RECIPES
    from vlmkit.training.run import RUN_CONFIG, recipe_from_config

    saved = args.out / RUN_CONFIG
    config_file = args.config or (saved if args.resume and saved.exists() else None)
    settings: dict = {}
    if config_file:
        try:
            settings = json.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"{config_file}: cannot read run config ({error})") from None
    settings = settings_from_flags(args, RECIPES[args.recipe], settings)
    where = str(config_file or "flags")
    try:
        return recipe_from_config(args.recipe, settings, where=where)
    except ConfigError as error:
        raise ConfigError(name_flags(str(error), RECIPES[args.recipe], where)) from None


def run_train(args: argparse.Namespace) -> int:
    from vlmkit.training.run import run

    result = run(recipe_from_args(args), args.out, device=args.device, resume=args.resume)
    if result.model_dir is not None:
        print(json.dumps({"step": result.step, **result.metrics}))
        print(f"model saved to {result.model_dir}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from vlmkit.training.metrics import plot_metrics

    print(plot_metrics(args.run_dir, args.out))
    return 0
