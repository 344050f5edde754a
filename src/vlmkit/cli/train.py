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
    train = subparsers.add_parser("train", help="train a model (clip, siglip, lm, vlm)")
    kinds = train.add_subparsers(dest="recipe", metavar="RECIPE", required=True)
    for family in ("clip", "siglip"):
        parser = kinds.add_parser(family, help=f"contrastive {family.upper()} training or fine-tuning")
        parser.add_argument("--data", help="training dataset folder (records.jsonl + images)")
        parser.add_argument("--eval-data", help="held-out dataset folder (default: a sibling 'val' folder)")
        parser.add_argument("--preset", choices=("tiny", "small", "base"))
        parser.add_argument("--image-size", type=int)
        parser.add_argument("--conv-stem", type=int, help="stride-2 conv layers before the patch projection")
        parser.add_argument("--conv-stem-norm", choices=("none", "batch"), help="normalisation in the conv stem")
        parser.add_argument(
            "--caption-word-loss", type=float, help="weight of a loss that predicts caption words from the image"
        )
        parser.add_argument("--from", dest="init_from", help="pretrained model directory or hub id to fine-tune")
        parser.add_argument("--lock-image", action="store_true", default=None, help="freeze the image tower (LiT)")
        parser.add_argument("--lock-text", action="store_true", default=None, help="freeze the text tower")
        parser.add_argument(
            "--hard-negatives",
            action="store_true",
            default=None,
            help="add a one-word-swapped false caption per image (ShapesWorld colour/shape/size words)",
        )
        parser.add_argument("--eval-images", type=int)
        _common(parser)
        parser.set_defaults(handler=run_train, family=family)
    lm = kinds.add_parser("lm", help="a small decoder (and tokenizer) on a dataset's text, as chat turns")
    lm.add_argument("--data", help="training dataset folder")
    lm.add_argument("--vocab-size", type=int)
    _common(lm)
    lm.set_defaults(handler=run_train, family="lm")
    vlm = kinds.add_parser("vlm", help="LLaVA stages: projector alignment, then instruction tuning")
    vlm.add_argument("--stage", choices=("align", "instruct"), required=True)
    vlm.add_argument("--data", help="training dataset folder")
    vlm.add_argument("--eval-data", help="held-out dataset folder for periodic evaluation")
    vlm.add_argument(
        "--vision-from",
        help="align: a dual encoder (a `train clip` run or model directory), or vlmkit:conse-effnet-minilm for "
        "its ImageNet EfficientNet",
    )
    vlm.add_argument("--decoder-from", help="align: a decoder (a `train lm` model directory)")
    vlm.add_argument(
        "--vision-layer",
        type=int,
        help="align: the tower's output that feeds the projector: a ViT block (-1: the last) or a CNN feature map "
        "(stem, stages, head; -1: the head)",
    )
    vlm.add_argument(
        "--pixel-shuffle",
        type=int,
        help="align: merge each r x r block of vision tokens into one (default: 2 where it divides the grid)",
    )
    vlm.add_argument("--from", dest="init_from", help="instruct: the VLM from the align stage")
    vlm.add_argument("--lora-rank", type=int, help="instruct: train LoRA adapters of this rank (0: full)")
    vlm.add_argument("--lora-alpha", type=float)
    vlm.add_argument("--train-vision", action="store_true", default=None, help="unfreeze the vision tower")
    vlm.add_argument(
        "--train-decoder",
        action="store_true",
        default=None,
        help="align: train the decoder too, not only the projector",
    )
    vlm.add_argument(
        "--fresh-decoder",
        action="store_true",
        default=None,
        help="align (with --train-decoder): re-initialise --decoder-from's weights, keeping its tokenizer",
    )
    vlm.add_argument("--questions-per-turn", type=int, help="instruct: question turns per training conversation")
    vlm.add_argument(
        "--caption-share", type=float, help="instruct: share of training conversations with a caption request (1)"
    )
    vlm.add_argument("--eval-images", type=int)
    _common(vlm)
    vlm.set_defaults(handler=run_train, family="vlm")

    plot = subparsers.add_parser("plot", help="plot a training run's metrics to PNG")
    plot.add_argument("run_dir", type=Path)
    plot.add_argument("--out", type=Path, help="output PNG (default: RUN_DIR/metrics.png)")
    plot.set_defaults(handler=run_plot)


def _common(parser: argparse.ArgumentParser) -> None:
    for flag, kind in TRAIN_FLAGS.items():
        parser.add_argument("--" + flag.replace("_", "-"), type=kind)
    parser.add_argument("--gradient-checkpointing", action="store_true", default=None)
    parser.add_argument("--config", type=Path, help="a run.json to start from (flags override it)")
    parser.add_argument("--out", required=True, type=Path, help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto (default): CUDA when there is one; under torchrun each process takes the GPU of its local rank",
    )


# Recipe fields that may come from flags, when the parser has them.
RECIPE_FLAGS = (
    "data",
    "eval_data",
    "conv_stem",
    "conv_stem_norm",
    "caption_word_loss",
    "hard_negatives",
    "preset",
    "image_size",
    "init_from",
    "lock_image",
    "lock_text",
    "eval_images",
    "vocab_size",
    "stage",
    "vision_from",
    "decoder_from",
    "vision_layer",
    "pixel_shuffle",
    "lora_rank",
    "lora_alpha",
    "train_vision",
    "train_decoder",
    "fresh_decoder",
    "questions_per_turn",
    "caption_share",
)


def _recipe_module(family: str):
    import importlib

    name = "contrastive" if family in ("clip", "siglip") else "generative"
    return importlib.import_module(f"vlmkit.training.recipes.{name}")


def recipe_from_args(args: argparse.Namespace):
    module = _recipe_module(args.family)
    recipe_class = module.ContrastiveRecipe if args.family in ("clip", "siglip") else module.GenerativeRecipe
    settings: dict = {}
    config_file = args.config or (args.out / "run.json" if args.resume and (args.out / "run.json").exists() else None)
    if config_file:
        try:
            settings = json.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"{config_file}: cannot read run config ({error})") from None
    if args.family in ("clip", "siglip"):
        settings["family"] = args.family
    elif args.family == "lm":
        settings["stage"] = "lm"
    for name in RECIPE_FLAGS:
        if getattr(args, name, None) is not None:
            settings[name] = getattr(args, name)
    train = dict(settings.get("train", {}))
    for name in [*TRAIN_FLAGS, "gradient_checkpointing"]:
        if getattr(args, name) is not None:
            train[name] = getattr(args, name)
    settings["train"] = train
    return recipe_class.from_dict(settings, where="train settings")


def run_train(args: argparse.Namespace) -> int:
    from vlmkit.training.distributed import cleanup, init_distributed
    from vlmkit.training.trainer import Trainer, save_run_config

    recipe = recipe_from_args(args)
    module = _recipe_module(args.family)
    prepare, export = module.prepare, module.export
    context = init_distributed(None if args.device == "auto" else args.device)
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
