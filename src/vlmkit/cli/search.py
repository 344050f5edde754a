"""``vlmkit index | search | tag``: search a photo, document (and video) collection from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

from vlmkit.cli import HelpFormatter, add_device_option, require, resolve_device
from vlmkit.documents.engines import DEFAULT_ENGINE, ENGINES
from vlmkit.documents.pages import DEFAULT_MAX_PAGES
from vlmkit.errors import InputError
from vlmkit.search.fusion import MODES
from vlmkit.search.hits import Hit


def register(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser(
        "index", help="embed a folder (or dataset) into a search index, incrementally", formatter_class=HelpFormatter
    )
    index.add_argument("path", type=Path, help="folder of images/PDFs/videos, or a dataset's records.jsonl")
    index.add_argument("--index", required=True, type=Path, help="index directory (created when missing)")
    index.add_argument(
        "--model", help="model directory, hub id or vlmkit:NAME (default: the index's own, else the offline model)"
    )
    index.add_argument("--batch-size", type=int, default=32, help="frames per model call and per committed batch")
    index.add_argument(
        "--workers",
        type=int,
        help="reading processes: decoding, PDF rendering, OCR (default: CPU count - 1, at most 8)",
    )
    index.add_argument("--video-every", type=float, default=2.0, help="seconds between sampled video frames")
    index.add_argument(
        "--ocr",
        action="store_true",
        help="also read the text in images (OCR: 1-4 s of CPU each), to find them by words; PDFs are always read",
    )
    index.add_argument(
        "--engine",
        choices=sorted(ENGINES),
        default=DEFAULT_ENGINE,
        help="OCR engine for images (--ocr) and scanned PDF pages: PP-OCRv4 (onnxruntime) or Tesseract",
    )
    index.add_argument(
        "--max-pages", type=int, default=DEFAULT_MAX_PAGES, help="a document with more pages is skipped (listed)"
    )
    index.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_option(index)
    index.set_defaults(handler=run_index)

    search = subparsers.add_parser(
        "search",
        help="find images in an index by text, by an example image, or by the tags `vlmkit tag` gave",
        formatter_class=HelpFormatter,
    )
    search.add_argument("index", type=Path, help="index directory")
    search.add_argument("query", nargs="?", help="text query, e.g. 'a dog on a beach' or 'invoice 4471'")
    search.add_argument("--image", type=Path, help="query by this image instead (near duplicates score ~1)")
    search.add_argument("-k", type=int, default=10, help="number of results")
    search.add_argument(
        "--mode",
        choices=MODES,
        default="hybrid",
        help="how a text query ranks where the index holds texts (PDF pages, OCR'd images): hybrid fuses the "
        "words' BM25 ranking with the embedding ranking (reciprocal rank); text: words only (the exact phrase where a "
        "text prints it, else all the words); image: embeddings only",
    )
    search.add_argument(
        "--min-score",
        type=float,
        help="drop results scoring lower: cosine similarity; a hybrid search over texts: the fused score "
        "(at most 2/61); --mode text: BM25; --tag alone: tag score",
    )
    search.add_argument("--folder", type=Path, help="only results under this folder")
    search.add_argument("--after", help="only files modified on or after this date (YYYY-MM-DD)")
    search.add_argument("--before", help="only files modified before this date (YYYY-MM-DD)")
    search.add_argument("--min-width", type=int, help="only images at least this wide (pixels)")
    search.add_argument("--min-height", type=int, help="only images at least this tall (pixels)")
    search.add_argument(
        "--tag",
        action="append",
        default=[],
        help="only items with this tag (repeatable: all of them); without a query, lists them best first by tag score",
    )
    search.add_argument("--model", help="model to embed the query (must be the one that built the index)")
    search.add_argument(
        "--html",
        type=Path,
        help="also write a self-contained HTML page of thumbnails (pages with the matching line marked)",
    )
    search.add_argument("--png", type=Path, help="also write a PNG grid of thumbnails")
    add_device_option(search)
    search.set_defaults(handler=run_search)

    tag = subparsers.add_parser(
        "tag", help="zero-shot tag every indexed file against a label list", formatter_class=HelpFormatter
    )
    tag.add_argument("index", type=Path, help="index directory")
    tag.add_argument("--labels", required=True, help="comma-separated labels, e.g. 'cat,dog,beach'")
    tag.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="probability a label needs to become a tag; each file's probabilities are shared by the labels and "
        "'none of these' (generic prompts: thing, texture, text, ...), so 0.9 means the model is 90%% sure",
    )
    tag.add_argument("--model", help="model (must be the one that built the index)")
    tag.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_option(tag)
    tag.set_defaults(handler=run_tag)


def run_index(args: argparse.Namespace) -> int:
    require("faiss", "search")
    from vlmkit.search.indexer import index_dataset, index_folder

    options = {
        "batch_size": args.batch_size,
        "workers": args.workers,
        "video_every": args.video_every,
        "ocr": args.ocr,
        "max_pages": args.max_pages,
        "engine": args.engine,
        "progress": not args.no_progress,
        "device": resolve_device(args.device),
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


def _query_title(args: argparse.Namespace) -> str:
    """What was asked, for the reports' titles: the text or the query image's name, and the tags."""
    parts = [f'"{args.query}"' if args.query is not None else f"image {args.image.name}" if args.image else ""]
    if args.tag:
        parts.append("tag " + " + ".join(args.tag))
    return " · ".join(part for part in parts if part)


def _where(hit: Hit) -> str:
    """Where in the file the hit is: a video frame's time, a document's page, the line of text that matched."""
    at = f"  @ {hit.frame_time:.1f}s" if hit.frame_time is not None else ""
    at += f"  page {hit.page}" if hit.page is not None else ""
    return at + (f'  "{hit.line}"' if hit.line is not None else "")


def run_search(args: argparse.Namespace) -> int:
    require("faiss", "search")
    from vlmkit.search.metadata import Filters
    from vlmkit.search.query import Searcher, search_tags
    from vlmkit.search.report import write_html, write_png

    if args.query is not None and args.image is not None:
        raise InputError("give either a text query or --image FILE, not both")
    if args.query is None and args.image is None and not args.tag:
        raise InputError("give a text query, --image FILE or --tag LABEL")
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
    if args.query is None and args.image is None:  # tags alone: no model to load
        hits = search_tags(args.index, args.tag, args.k, model=args.model, min_score=args.min_score, filters=filters)
    else:
        with Searcher.open(args.index, args.model, device=resolve_device(args.device)) as searcher:
            if args.image is not None:
                hits = searcher.image([args.image], args.k, min_score=args.min_score, filters=filters)[0]
            else:
                options = {"min_score": args.min_score, "filters": filters, "mode": args.mode}
                hits = searcher.text(args.query, args.k, **options)[0]
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank:3d}  {hit.score:.4f}  {hit.path}{_where(hit)}")
    if not hits:
        print("no results")
    title = f"vlmkit search: {_query_title(args)}"
    if args.html and hits:
        print(f"wrote {write_html(hits, args.html, title)}")
    if args.png and hits:
        print(f"wrote {write_png(hits, args.png, title=title)}")
    return 0


TABLE_ROWS = 30  # files listed by `vlmkit tag`; the rest are counted


def _tag_table(tags: dict[str, dict[str, float]]) -> list[str]:
    """One line per file (names relative to the folder they share), its tags best first, '-' for none;
    tagged files first, at most ``TABLE_ROWS`` lines."""
    paths = sorted(tags, key=lambda path: (not tags[path], path))
    try:
        root = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])
    except (ValueError, IndexError):  # no files, or absolute and relative paths mixed
        root = ""
    if root in tags:  # a path that is also the others' folder
        root = os.path.dirname(root)
    names = [os.path.relpath(path, root) if root else path for path in paths[:TABLE_ROWS]]
    width = max([len("file"), *map(len, names)])
    lines = [f"{'file':<{width}}  tags" + (f" (files under {root})" if root else "")]
    for name, path in zip(names, paths, strict=False):
        found = sorted(tags[path].items(), key=lambda item: (-item[1], item[0]))
        lines.append(f"{name:<{width}}  " + (", ".join(f"{label} {score:.2f}" for label, score in found) or "-"))
    if len(paths) > TABLE_ROWS:
        more = len(paths) - TABLE_ROWS
        lines.append(
            f"... and {more} more file{'s' * (more > 1)}; list a label's files with: vlmkit search INDEX --tag LABEL"
        )
    return lines


def run_tag(args: argparse.Namespace) -> int:
    require("faiss", "search")
    from vlmkit.search.query import Searcher

    labels = list(dict.fromkeys(label.strip() for label in args.labels.split(",") if label.strip()))
    if not labels:
        raise InputError("--labels: give at least one label, e.g. --labels 'cat,dog,beach'")
    with Searcher.open(args.index, args.model, device=resolve_device(args.device)) as searcher:
        before = searcher.stored_tags()
        tags = searcher.tag(labels, threshold=args.threshold, progress=not args.no_progress)
    counts = {label: sum(label in found for found in tags.values()) for label in labels}
    untagged = sum(not found for found in tags.values())
    print(
        f"tagged {len(tags)} files at threshold {args.threshold:g}: "
        + ", ".join(f"{label} {n}" for label, n in counts.items())
        + f"; none of these {untagged}"
    )
    for line in _tag_table(tags):
        print(line)
    retagged = [path for path, found in before.items() if found and path in tags]
    if retagged:
        replaced = sorted({label for path in retagged for label in before[path]})
        print(f"{len(retagged)} files re-tagged; replaced labels: {', '.join(replaced)}")
    return 0
