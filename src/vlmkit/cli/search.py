"""``vlmkit index | search | tag``: search a photo (and video) collection from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from vlmkit.cli import require
from vlmkit.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser("index", help="embed a folder (or dataset) into a search index, incrementally")
    index.add_argument("path", type=Path, help="folder of images/videos, or a dataset's records.jsonl")
    index.add_argument("--index", required=True, type=Path, help="index directory (created when missing)")
    index.add_argument(
        "--model", help="model directory, hub id or vlmkit:NAME (default: the index's own, else the offline model)"
    )
    index.add_argument("--batch-size", type=int, default=32, help="frames per model call and per committed batch")
    index.add_argument("--workers", type=int, help="decoding processes (default: CPU count - 1, at most 8)")
    index.add_argument("--video-every", type=float, default=2.0, help="seconds between sampled video frames")
    index.add_argument("--no-progress", action="store_true", help="no progress bar")
    index.set_defaults(handler=run_index)

    search = subparsers.add_parser("search", help="find images in an index by text or by an example image")
    search.add_argument("index", type=Path, help="index directory")
    search.add_argument("query", nargs="?", help="text query, e.g. 'a dog on a beach'")
    search.add_argument("--image", type=Path, help="query by this image instead (near duplicates score ~1)")
    search.add_argument("-k", type=int, default=10, help="number of results")
    search.add_argument("--min-score", type=float, help="drop results with a lower cosine similarity")
    search.add_argument("--folder", type=Path, help="only results under this folder")
    search.add_argument("--after", help="only files modified on or after this date (YYYY-MM-DD)")
    search.add_argument("--before", help="only files modified before this date (YYYY-MM-DD)")
    search.add_argument("--min-width", type=int, help="only images at least this wide (pixels)")
    search.add_argument("--min-height", type=int, help="only images at least this tall (pixels)")
    search.add_argument("--tag", action="append", default=[], help="only items with this tag (repeatable)")
    search.add_argument("--model", help="model to embed the query (must be the one that built the index)")
    search.add_argument("--html", type=Path, help="also write a self-contained HTML page of thumbnails")
    search.add_argument("--png", type=Path, help="also write a PNG grid of thumbnails")
    search.set_defaults(handler=run_search)

    tag = subparsers.add_parser("tag", help="zero-shot tag every indexed file against a label list")
    tag.add_argument("index", type=Path, help="index directory")
    tag.add_argument("--labels", required=True, help="comma-separated labels, e.g. 'cat,dog,beach'")
    tag.add_argument("--threshold", type=float, default=0.3, help="probability a label needs to become a tag")
    tag.add_argument("--model", help="model (must be the one that built the index)")
    tag.set_defaults(handler=run_tag)


def run_index(args: argparse.Namespace) -> int:
    require("faiss", "search")
    from vlmkit.search.indexer import index_dataset, index_folder

    options = {
        "batch_size": args.batch_size,
        "workers": args.workers,
        "video_every": args.video_every,
        "progress": not args.no_progress,
    }
    if args.path.is_dir() and not (args.path / "records.jsonl").is_file():
        report = index_folder(args.path, args.index, args.model, **options)
    elif args.path.is_file() or args.path.is_dir():
        report = index_dataset(args.path, args.index, args.model, **options)
    else:
        raise InputError(f"{args.path}: no such folder or records file")
    print(report.summary())
    for path, reason in report.failed[:20]:
        print(f"  skipped {path}: {reason}")
    if len(report.failed) > 20:
        print(f"  ... and {len(report.failed) - 20} more")
    return 0


def _date(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise InputError(f"{flag}: expected a date like 2024-05-31, got {text!r}") from None


def run_search(args: argparse.Namespace) -> int:
    require("faiss", "search")
    from vlmkit.search.metadata import Filters
    from vlmkit.search.query import Searcher
    from vlmkit.search.report import write_html, write_png

    if (args.query is None) == (args.image is None):
        raise InputError("give either a text query or --image FILE, not both or neither")
    if args.image is not None and not args.image.is_file():
        raise InputError(f"{args.image}: query image not found")
    filters = Filters(
        folder=args.folder.resolve().as_posix() if args.folder else None,
        mtime_min=_date(args.after, "--after"),
        mtime_max=_date(args.before, "--before"),
        min_width=args.min_width,
        min_height=args.min_height,
        tags=tuple(args.tag),
    )
    with Searcher.open(args.index, args.model) as searcher:
        if args.image is not None:
            hits = searcher.image([args.image], args.k, min_score=args.min_score, filters=filters)[0]
        else:
            hits = searcher.text(args.query, args.k, min_score=args.min_score, filters=filters)[0]
    for rank, hit in enumerate(hits, start=1):
        when = f"  @ {hit.frame_time:.1f}s" if hit.frame_time is not None else ""
        print(f"{rank:3d}  {hit.score:.4f}  {hit.path}{when}")
    if not hits:
        print("no results")
    title = f"vlmkit search: {args.query if args.query is not None else args.image}"
    if args.html and hits:
        print(f"wrote {write_html(hits, args.html, title)}")
    if args.png and hits:
        print(f"wrote {write_png(hits, args.png)}")
    return 0


def run_tag(args: argparse.Namespace) -> int:
    require("faiss", "search")
    from vlmkit.search.query import tag_collection

    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    tags = tag_collection(args.index, labels, model=args.model, threshold=args.threshold)
    counts = {label: sum(label in found for found in tags.values()) for label in labels}
    print(f"tagged {len(tags)} files: " + ", ".join(f"{label} {n}" for label, n in counts.items()))
    return 0
