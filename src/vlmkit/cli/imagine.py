"""``vlmkit imagine PROMPT... --model M --out grid.png``: text to images with a trained DiT.

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
