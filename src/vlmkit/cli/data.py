"""``vlmkit data shapes|docs|video|coco|show|mmbench|shards``: generate, import, inspect, export and pack datasets."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

from vlmkit.cli import HelpFormatter, require
from vlmkit.errors import ConfigError

SPLIT_CHOICES = ("train", "val", "test", "compositional", "all")
DOC_SPLIT_CHOICES = ("train", "val", "test", "all")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="generate and inspect datasets", formatter_class=HelpFormatter)
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    shapes = commands.add_parser("shapes", help="generate a ShapesWorld dataset", formatter_class=HelpFormatter)
    shapes.add_argument("--out", required=True, help="output folder (with --split all: one subfolder per split)")
    shapes.add_argument("--n", type=int, default=10000, help="images (train images with --split all)")
    shapes.add_argument("--size", type=int, default=64, help="image side in pixels")
    shapes.add_argument("--seed", type=int, default=0, help="random seed (the same seed gives identical data)")
    shapes.add_argument("--split", choices=SPLIT_CHOICES, default="train", help="split to generate")
    shapes.add_argument("--objects", type=int, default=6, metavar="MAX", help="most objects per image")
    shapes.add_argument(
        "--background", choices=("plain", "textured", "mixed"), default="mixed", help="scene backgrounds"
    )
    shapes.add_argument(
        "--held-out",
        default=None,
        metavar="PAIRS",
        help='compositional pairs, e.g. "red triangle,blue star" (default: 5 built-in pairs)',
    )
    for split in ("val", "test", "compositional"):
        shapes.add_argument(
            f"--n-{split}", type=int, default=None, metavar="N", help=f"{split} images with --split all (default: n/10)"
        )
    shapes.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    shapes.set_defaults(handler=run_shapes)

    docs = commands.add_parser(
        "docs", help="generate a DocWorld dataset of synthetic document pages", formatter_class=HelpFormatter
    )
    docs.add_argument("--out", required=True, help="output folder (with --split all: one subfolder per split)")
    docs.add_argument("--n", type=int, default=1000, help="pages (train pages with --split all)")
    docs.add_argument("--seed", type=int, default=0, help="random seed (the same seed gives identical data)")
    docs.add_argument("--split", choices=DOC_SPLIT_CHOICES, default="train", help="split to generate")
    docs.add_argument("--clean", action="store_true", help="no scan degradation: pages saved exactly as drawn, as PNG")
    docs.add_argument("--width", type=int, default=800, help="page width in pixels (receipts are 0.6 of it)")
    docs.add_argument(
        "--kinds",
        default=None,
        metavar="KINDS",
        help="comma-separated: receipt,invoice,form,letter,table (default: all)",
    )
    for split in ("val", "test"):
        docs.add_argument(
            f"--n-{split}", type=int, default=None, metavar="N", help=f"{split} pages with --split all (default: n/10)"
        )
    docs.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    docs.set_defaults(handler=run_docs)

    video = commands.add_parser(
        "video",
        help="generate a VideoWorld dataset of short clips with timed events (MP4: H.264 if PyAV has libx264, "
        "else MPEG-4; plus the frames as PNG)",
        formatter_class=HelpFormatter,
    )
    video.add_argument("--out", required=True, help="output folder (with --split all: one subfolder per split)")
    video.add_argument("--n", type=int, default=1000, help="clips (train clips with --split all)")
    video.add_argument("--seed", type=int, default=0, help="random seed (the same seed gives identical data)")
    video.add_argument("--split", choices=SPLIT_CHOICES, default="train", help="split to generate")
    video.add_argument("--frames", type=int, default=16, help="frames per clip")
    video.add_argument("--fps", type=int, default=8, help="frames per second")
    video.add_argument("--size", type=int, default=64, help="frame side in pixels (even)")
    video.add_argument(
        "--held-out",
        default=None,
        metavar="PAIRS",
        help='compositional pairs, e.g. "red triangle,blue star" (default: the 5 ShapesWorld pairs)',
    )
    for split in ("val", "test", "compositional"):
        video.add_argument(
            f"--n-{split}", type=int, default=None, metavar="N", help=f"{split} clips with --split all (default: n/10)"
        )
    video.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    video.set_defaults(handler=run_video)

    coco = commands.add_parser(
        "coco",
        help="import COCO annotations (instances or captions), or RefCOCO/+/g refs, as a dataset folder",
        formatter_class=HelpFormatter,
    )
    source = coco.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--instances", help="instances_*.json (boxes, masks; with --refs, the release's instances.json)"
    )
    source.add_argument("--captions", help="captions_*.json")
    coco.add_argument("--refs", help="RefCOCO-style refs as JSON (see vlmkit.data.refcoco to convert refs(unc).p)")
    coco.add_argument("--split", help="with --refs: keep this split's refs only (train, val, testA, testB, test)")
    coco.add_argument("--images", required=True, help="the folder holding the images the file names")
    coco.add_argument(
        "--out",
        required=True,
        help="the records file to write (.jsonl, or a folder for its records.jsonl); it must be in a folder above "
        "--images, e.g. the COCO root, since records name images inside their own folder",
    )
    coco.add_argument("--skip-bad", action="store_true", help="skip (and count) bad entries instead of stopping")
    coco.set_defaults(handler=run_coco)

    show = commands.add_parser(
        "show",
        help="draw a grid of a dataset's images with boxes, mask outlines and captions",
        formatter_class=HelpFormatter,
    )
    show.add_argument("dataset", help="dataset folder with records.jsonl")
    show.add_argument("--n", type=int, default=16, help="records to draw (the first ones)")
    show.add_argument("--out", default="grid.png", help="output PNG")
    show.add_argument("--columns", type=int, default=None, help="tiles per row (default: a square grid)")
    show.set_defaults(handler=run_show)

    mmbench = commands.add_parser(
        "mmbench", help="export a dataset's multiple-choice questions as MMBench TSV", formatter_class=HelpFormatter
    )
    mmbench.add_argument("dataset", help="dataset folder with records.jsonl")
    mmbench.add_argument("--out", required=True, help="output .tsv")
    mmbench.set_defaults(handler=run_mmbench)

    shards = commands.add_parser(
        "shards", help="pack a dataset folder into WebDataset tar shards", formatter_class=HelpFormatter
    )
    shards.add_argument("dataset", help="dataset folder with records.jsonl")
    shards.add_argument("--out", required=True, help="shard name pattern, e.g. 'shards/train-%%06d.tar'")
    shards.add_argument("--per-shard", type=int, default=10_000, help="samples per shard")
    shards.set_defaults(handler=run_shards)


def _held_out(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in text.split(","):
        words = item.split()
        if len(words) != 2:
            raise ConfigError(f"--held-out: expected comma-separated 'colour shape' pairs, got {item.strip()!r}")
        pairs.append((words[0], words[1]))
    return tuple(pairs)


def _generate(
    args: argparse.Namespace,
    held_out_splits: tuple[str, ...],
    unit: str,
    generate_split: Callable[..., Path],
    config: object,
) -> int:
    """Write ``--split`` (or every split: train ``--n``, the others ``--n-SPLIT`` or n/10) and say how fast."""
    start = time.perf_counter()
    if args.split == "all":
        default = max(1, args.n // 10)
        counts = {"train": args.n, **{s: getattr(args, f"n_{s}") or default for s in held_out_splits}}
        from vlmkit.data.generator_folder import generate_splits

        generate_splits(generate_split, args.out, config, counts, args.seed, args.workers)
        total = sum(counts.values())
    else:
        generate_split(args.out, config, args.split, args.n, args.seed, args.workers)
        total = args.n
    seconds = time.perf_counter() - start
    print(f"wrote {total} {unit} to {args.out} in {seconds:.1f} s ({total / seconds:.0f} {unit}/s)")
    return 0


def run_shapes(args: argparse.Namespace) -> int:
    from vlmkit.data.shapesworld import ShapesWorldConfig, generate_split

    fields = {"image_size": args.size, "max_objects": args.objects, "background": args.background}
    if args.held_out is not None:
        fields["held_out"] = _held_out(args.held_out)
    config = ShapesWorldConfig(**fields)
    return _generate(args, ("val", "test", "compositional"), "images", generate_split, config)


def run_docs(args: argparse.Namespace) -> int:
    require("matplotlib", "docs")  # the fonts come with it
    from vlmkit.data.docworld import KINDS, DocWorldConfig, generate_split

    kinds = KINDS if args.kinds is None else tuple(k.strip() for k in args.kinds.split(","))
    config = DocWorldConfig(page_width=args.width, kinds=kinds, clean=args.clean)
    return _generate(args, ("val", "test"), "pages", generate_split, config)


def run_video(args: argparse.Namespace) -> int:
    require("av", "video")
    from vlmkit.data.videoworld import VideoWorldConfig, generate_split

    fields = {"image_size": args.size, "frames": args.frames, "fps": args.fps}
    if args.held_out is not None:
        fields["held_out"] = _held_out(args.held_out)
    config = VideoWorldConfig(**fields)
    return _generate(args, ("val", "test", "compositional"), "clips", generate_split, config)


def run_coco(args: argparse.Namespace) -> int:
    from vlmkit.data.coco import read_coco_captions, read_coco_instances
    from vlmkit.data.records import write_records
    from vlmkit.data.refcoco import read_refcoco

    if (args.refs or args.split) and not args.instances:
        raise ConfigError("--refs/--split: RefCOCO refs need the release's --instances file")
    if args.split and not args.refs:
        raise ConfigError("--split: splits are the refs' own; give --refs too")
    images = Path(args.images)
    if not images.is_dir():
        raise ConfigError(f"--images {images}: not a folder")
    out = Path(args.out)
    folder, name = (out.parent, out.name) if out.suffix == ".jsonl" else (out, "records.jsonl")
    if not images.resolve().is_relative_to(folder.resolve()):
        raise ConfigError(
            f"--out {out}: must be in a folder that holds --images {images} (records name images inside their "
            "folder), e.g. the COCO root"
        )
    folder.mkdir(parents=True, exist_ok=True)
    image_dir = os.path.relpath(images.resolve(), folder.resolve())
    on_error = "skip" if args.skip_bad else "raise"
    if args.refs:
        found = read_refcoco(args.refs, args.instances, split=args.split, image_dir=image_dir, on_error=on_error)
    elif args.instances:
        found = read_coco_instances(args.instances, image_dir=image_dir, on_error=on_error)
    else:
        found = read_coco_captions(args.captions, image_dir=image_dir, on_error=on_error)
    path = write_records(folder, found.records, filename=name)
    skipped = f", skipped {len(found.problems)} bad entries" if found.problems else ""
    print(f"wrote {len(found.records)} records to {path}{skipped}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from vlmkit.data.shapesworld import draw_grid

    if args.n < 1:
        raise ConfigError(f"--n: expected at least 1 record to draw, got {args.n}")
    print(draw_grid(args.dataset, args.n, args.out, args.columns))
    return 0


def run_mmbench(args: argparse.Namespace) -> int:
    from vlmkit.data.records import read_records
    from vlmkit.data.shapesworld import write_mmbench_tsv

    records = (record.to_dict() for record in read_records(args.dataset).records)
    rows = write_mmbench_tsv(records, Path(args.dataset), args.out)
    print(f"wrote {rows} questions to {args.out}")
    return 0


def run_shards(args: argparse.Namespace) -> int:
    from vlmkit.data.records import RecordDataset
    from vlmkit.data.webdataset import write_webdataset

    dataset = RecordDataset(args.dataset)
    paths = write_webdataset(dataset.records, dataset.root, args.out, args.per_shard, progress=True)
    print(f"wrote {len(dataset)} samples to {len(paths)} shard(s): {paths[0]} .. {paths[-1]}")
    return 0
