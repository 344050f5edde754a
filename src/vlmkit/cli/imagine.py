"""``vlmkit imagine PROMPT... --model M --out grid.png``: text to images with a trained DiT; and
``vlmkit geneval``: GenEval on ShapesWorld (``evaluation.geneval``) for such a model, or the validation
of its scene reader on real renders.

The request is checked before the model loads, so a bad prompt or setting costs one line and no wait.
The sheet has one row per prompt (the prompt, then its ``-n`` images); ``--images DIR`` also writes
each image as ``DIR/PROMPTINDEX_IMAGEINDEX.png`` at its own size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vlmkit.cli import HelpFormatter, add_device_option, resolve_device


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "imagine", help="generate images from text with a text-to-image model", formatter_class=HelpFormatter
    )
    parser.add_argument("prompts", nargs="+", help="one or more prompts, e.g. 'a red star above a blue circle'")
    parser.add_argument(
        "--model", required=True, help="text-to-image model directory (a `vlmkit train t2i` run's model/)"
    )
    parser.add_argument("-n", "--num-images", type=int, default=4, help="images per prompt")
    parser.add_argument("--seed", type=int, default=0, help="image k starts from noise seeded seed + k")
    parser.add_argument("--steps", type=int, default=20, help="sampler steps")
    parser.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale (1: none)")
    parser.add_argument("--sampler", default="euler", help="euler or heun (two model calls per step)")
    parser.add_argument(
        "--shift", type=float, default=1.0, help="time shift of the schedule (above 1: more steps near noise)"
    )
    parser.add_argument("--out", type=Path, required=True, help="the sheet of all images, as PNG")
    parser.add_argument("--images", type=Path, default=None, help="also write each image to this folder")
    add_device_option(parser)
    parser.set_defaults(handler=run_imagine)
    register_geneval(subparsers)


def run_imagine(args: argparse.Namespace) -> int:
    from PIL import Image

    from vlmkit.checkpoints import from_pretrained
    from vlmkit.errors import InputError
    from vlmkit.models.dit import DiT
    from vlmkit.tasks.imagine import ImagineSettings, check_prompts, generate_images
    from vlmkit.visualize import Row, Tile, result_sheet, save_png

    settings = ImagineSettings(
        steps=args.steps, guidance=args.guidance, sampler=args.sampler, shift=args.shift, seed=args.seed
    )
    settings.check()
    check_prompts(args.prompts, args.num_images)
    if args.out.suffix.lower() != ".png":
        raise InputError(f"--out {args.out}: expected a .png file name")
    model = from_pretrained(args.model, device=resolve_device(args.device))
    if not isinstance(model, DiT):
        raise InputError(f"{args.model} is a {type(model).__name__}, but imagine needs a text-to-image model (DiT)")
    images = generate_images(model, args.prompts, args.num_images, settings)
    pictures = [Image.fromarray(image.permute(1, 2, 0).numpy()) for image in images]
    n = args.num_images
    rows = [Row(prompt, [Tile(p) for p in pictures[i * n : (i + 1) * n]]) for i, prompt in enumerate(args.prompts)]
    save_png(result_sheet(rows, tile=128, caption_lines=0), args.out)
    if args.images is not None:
        args.images.mkdir(parents=True, exist_ok=True)
        for k, picture in enumerate(pictures):
            save_png(picture, args.images / f"{k // n:03d}_{k % n:03d}.png")
    print(f"{len(pictures)} image(s) of {model.config.image_size} px written to {args.out}")
    return 0


def register_geneval(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "geneval",
        help="GenEval on ShapesWorld: score a text-to-image model, or validate the scene reader",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--data", required=True, type=Path, help="a ShapesWorld split folder (e.g. sw/test)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="text-to-image model directory to score")
    which.add_argument("--validate-reader", action="store_true", help="read the split's renders against their truth")
    parser.add_argument(
        "--through", type=int, default=None, help="validation: squash each render to this side and back"
    )
    parser.add_argument("--limit", type=int, default=None, help="validation: the first N images only")
    parser.add_argument("--per-task", type=int, default=50, help="distinct prompts per task")
    parser.add_argument("-n", "--num-images", type=int, default=4, help="images per prompt")
    parser.add_argument("--unseen-only", action="store_true", help="only prompts naming a held-out colour-shape pair")
    parser.add_argument("--steps", type=int, default=20, help="sampler steps")
    parser.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale")
    parser.add_argument("--seed", type=int, default=0, help="image k of each prompt starts from seed + k")
    parser.add_argument(
        "--sheet", type=Path, default=None, help="also write the first prompt of each task as a PNG sheet"
    )
    add_device_option(parser)
    parser.set_defaults(handler=run_geneval)


def run_geneval(args: argparse.Namespace) -> int:
    import json

    from vlmkit.checkpoints import from_pretrained
    from vlmkit.errors import InputError
    from vlmkit.evaluation.geneval import evaluate_model, validate_reader
    from vlmkit.models.dit import DiT
    from vlmkit.tasks.imagine import ImagineSettings
    from vlmkit.visualize import Row, Tile, result_sheet, save_png

    if args.validate_reader:
        print(json.dumps(validate_reader(args.data, args.limit, args.through)))
        return 0
    settings = ImagineSettings(steps=args.steps, guidance=args.guidance, seed=args.seed)
    settings.check()
    if args.per_task < 1 or not 1 <= args.num_images <= 64:
        raise InputError("--per-task must be positive and -n in 1..64")
    model = from_pretrained(args.model, device=resolve_device(args.device))
    if not isinstance(model, DiT):
        raise InputError(f"{args.model} is a {type(model).__name__}, but geneval needs a text-to-image model (DiT)")
    scores, prompts, images = evaluate_model(
        model, args.data, args.per_task, args.num_images, settings, args.unseen_only
    )
    if args.sheet is not None:
        first = {}
        for prompt, group in zip(prompts, images, strict=True):
            first.setdefault(prompt.task, (prompt, group))
        rows = [Row(f"{task}: {p.prompt}", [Tile(image) for image in group]) for task, (p, group) in first.items()]
        save_png(result_sheet(rows, tile=128, caption_lines=0), args.sheet)
    print(json.dumps({"prompts": len(prompts), "images_per_prompt": args.num_images, **scores}))
    return 0
