"""``vlmkit train clip|siglip`` and ``vlmkit plot``: train from the command line, under torchrun too."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vlmkit.errors import ConfigError

# Flag -> TrainConfig field, for the optimisation settings every recipe shares.
TRAIN_FLAGS = {
    "steps": int,
    "batch_size": int,
    "grad_accum": int,
    "lr": float,
    "weight_decay": float,
    "warmup_steps": int,
    "precision": str,
    "seed": int,
    "log_every": int,
    "eval_every": int,
    "save_every": int,
    "keep_last": int,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train a model (clip, siglip)")
    kinds = train.add_subparsers(dest="recipe", metavar="RECIPE", required=True)
    for family in ("clip", "siglip"):
        parser = kinds.add_parser(family, help=f"contrastive {family.upper()} training or fine-tuning")
        parser.add_argument("--data", help="training dataset folder (records.jsonl + images)")
        parser.add_argument("--eval-data", help="held-out dataset folder (default: a sibling 'val' folder)")
        parser.add_argument("--preset", choices=("tiny", "small", "base"))
        parser.add_argument("--image-size", type=int)
        parser.add_argument("--from", dest="init_from", help="pretrained model directory or hub id to fine-tune")
        parser.add_argument("--lock-image", action="store_true", default=None, help="freeze the image tower (LiT)")
        parser.add_argument("--lock-text", action="store_true", default=None, help="freeze the text tower")
        parser.add_argument("--eval-images", type=int)
        for flag, kind in TRAIN_FLAGS.items():
            parser.add_argument("--" + flag.replace("_", "-"), type=kind)
        parser.add_argument("--gradient-checkpointing", action="store_true", default=None)
        parser.add_argument("--config", type=Path, help="a run.json to start from (flags override it)")
        parser.add_argument("--out", required=True, type=Path, help="run directory")
        parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
        parser.set_defaults(handler=run_train, family=family)

    plot = subparsers.add_parser("plot", help="plot a training run's metrics to PNG")
    plot.add_argument("run_dir", type=Path)
    plot.add_argument("--out", type=Path, help="output PNG (default: RUN_DIR/metrics.png)")
    plot.set_defaults(handler=run_plot)


def recipe_from_args(args: argparse.Namespace):
    from vlmkit.training.recipes.contrastive import ContrastiveRecipe

    settings: dict = {}
    config_file = args.config or (args.out / "run.json" if args.resume and (args.out / "run.json").exists() else None)
    if config_file:
        try:
            settings = json.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"{config_file}: cannot read run config ({error})") from None
    settings["family"] = args.family
    for name in ("data", "eval_data", "preset", "image_size", "init_from", "lock_image", "lock_text", "eval_images"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    train = dict(settings.get("train", {}))
    for name in [*TRAIN_FLAGS, "gradient_checkpointing"]:
        if getattr(args, name) is not None:
            train[name] = getattr(args, name)
    settings["train"] = train
    return ContrastiveRecipe.from_dict(settings, where="train settings")


def run_train(args: argparse.Namespace) -> int:
    from vlmkit.training.distributed import cleanup, init_distributed
    from vlmkit.training.recipes.contrastive import export, prepare
    from vlmkit.training.trainer import Trainer, save_run_config

    recipe = recipe_from_args(args)
    context = init_distributed()
    try:
        model, task = prepare(recipe)
        trainer = Trainer(model, task, recipe.train, args.out, context, resume=args.resume)
        if context.is_main:
            save_run_config(args.out, recipe.to_dict())
        metrics = trainer.fit()
        if context.is_main:
            path = export(model, args.out)
            print(json.dumps({"step": trainer.step, **metrics}))
            print(f"model saved to {path}")
    finally:
        cleanup()
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from vlmkit.training.metrics import plot_metrics

    print(plot_metrics(args.run_dir, args.out))
    return 0
