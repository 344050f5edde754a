"""Document search end to end: DocWorld page scans indexed with OCR, then found by phrases printed on them.

Generates a DocWorld split (scan-like pages: skew, blur, noise, uneven light, JPEG; or reads ``--data``),
indexes its page images with ``index_dataset(..., ocr=True)`` (OCR in the reader's worker processes, the
embedding model in this one) and times it. Each query is a ground-truth line printed on one page only (at least
two words, in order), so exactly one page is right; a query scores when that page ranks first. Measured for each
``--mode`` of ``vlmkit search`` (goal for hybrid: >= 95% first), with the share of right first hits whose
matching line (the box ``--html`` draws) holds the centre of the query's true line.

    .venv/bin/python benchmarks/doc_search.py [--pages 100] [--per-page 3] [--workers N] [--data DOCWORLD_SPLIT]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import torch

import vlmkit
from vlmkit.search.indexer import default_workers, index_dataset
from vlmkit.search.query import Searcher
from vlmkit.search.texts import terms


def phrases(records: list[dict], per_page: int, seed: int) -> list[tuple[str, str, list[float]]]:
    """``(image, line text, line box)``: up to ``per_page`` lines of each page (of two words or more, as the index
    cuts words) whose words, in order, are printed on that page alone."""
    lines = {r["image"]: [line for page in r["document"]["pages"] for line in page["lines"]] for r in records}
    streams = {
        image: f" {' '.join(terms(' '.join(line['text'] for line in found)))} " for image, found in lines.items()
    }

    def unique(line: dict) -> bool:
        words = terms(line["text"])
        return len(words) >= 2 and sum(f" {' '.join(words)} " in stream for stream in streams.values()) == 1

    rng = random.Random(seed)
    chosen = []
    for image, found in lines.items():
        eligible = [line for line in found if unique(line)]
        chosen += [(image, line["text"], line["box"]) for line in rng.sample(eligible, min(per_page, len(eligible)))]
    return chosen


def inside(box: tuple[float, float, float, float] | None, truth: list[float]) -> bool:
    x, y = (truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2
    return box is not None and box[0] <= x <= box[2] and box[1] <= y <= box[3]


def measure(searcher: Searcher, folder: Path, queries: list[tuple[str, str, list[float]]], mode: str) -> dict:
    """Share of queries whose page comes first, share of those whose matching line is the true one, ms a query."""
    start = time.perf_counter()
    firsts = [searcher.text(text, 1, mode=mode)[0][:1] for _, text, _ in queries]
    seconds = (time.perf_counter() - start) / len(queries)
    right = [
        (found[0], box)
        for (image, _, box), found in zip(queries, firsts, strict=True)
        if found and found[0].path == (folder / image).resolve().as_posix()
    ]
    lined = sum(inside(hit.box, box) for hit, box in right)
    return {"first": len(right) / len(queries), "line": lined / max(len(right), 1), "ms": seconds * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a DocWorld split folder (default: generate --pages of them)")
    parser.add_argument("--pages", type=int, default=100, help="pages to generate")
    parser.add_argument("--per-page", type=int, default=3, help="query phrases taken from each page")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="vlmkit:conse-effnet-minilm")
    parser.add_argument("--workers", type=int, default=default_workers(), help="reader (OCR) processes")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from vlmkit.data.docworld import DocWorldConfig, generate_split

    model = vlmkit.load(args.model)
    with tempfile.TemporaryDirectory(prefix="vlmkit-doc-search-") as scratch:
        folder = args.data or generate_split(
            Path(scratch) / "test", DocWorldConfig(), "test", args.pages, args.seed, progress=False
        )
        records = [json.loads(line) for line in (folder / "records.jsonl").read_text(encoding="utf-8").splitlines()]
        index_dir = Path(scratch) / "index"
        options = {"model_id": args.model, "workers": args.workers, "ocr": True, "progress": False}
        report = index_dataset(folder, index_dir, model, **options)
        rate = report.items / report.seconds
        print(
            f"indexed {report.items} DocWorld pages in {report.seconds:.1f} s: {rate:.2f} pages/s with OCR "
            f"({args.workers} reader processes, {torch.get_num_threads()} torch threads); {len(report.failed)} failed"
        )
        queries = phrases(records, args.per_page, args.seed)
        figures = {"pages": report.items, "pages_per_s": rate, "queries": len(queries)}
        with Searcher.open(index_dir, model, model_id=args.model) as searcher:
            for mode in ("hybrid", "text", "image"):
                figures[mode] = found = measure(searcher, folder, queries, mode)
                print(
                    f"{mode:>7}: right page first for {found['first']:.1%} of {len(queries)} phrases (its matching "
                    f"line on the true one for {found['line']:.1%} of those); {found['ms']:.1f} ms a query"
                    + ("  (goal >= 95%)" if mode == "hybrid" else "")
                )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
