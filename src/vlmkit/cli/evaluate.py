"""``vlmkit eval``: every task a model supports, on a dataset split, as a JSON and Markdown report."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from vlmkit.cli import DUAL_ENCODER, VLM, HelpFormatter, add_device_option, load_model
from vlmkit.documents.engines import ENGINES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a model on a dataset split (report.json + report.md)",
        description="Run every task the model supports (dual encoders: zero-shot classification and retrieval; "
        "vision-language models: VQA, multiple choice, captioning, image reliance), or measure an OCR engine's "
        "reading (--engine: CER, WER, word recall on pages with ground-truth text, e.g. DocWorld), print a "
        "summary and write the full report to report.json and report.md.",
        formatter_class=HelpFormatter,
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="dual encoder or vision-language model directory or hub id")
    which.add_argument("--engine", choices=sorted(ENGINES), help="an OCR engine to measure instead of a model")
    parser.add_argument("--data", required=True, help="dataset folder (records.jsonl + images)")
    parser.add_argument(
        "--out",
        type=Path,
        help="report folder (default: MODEL_DIR/eval-DATASET; ./eval-MODEL-DATASET for a hub id or vlmkit:NAME)",
    )
    parser.add_argument("--limit", type=int, help="evaluate the first N records only (default: all)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per model call")
    parser.add_argument("--label-key", default="color_shape", help="records' labels field for zero-shot")
    parser.add_argument(
        "--json", action="store_true", help="print the full report as JSON (for scripts), not the summary"
    )
    add_device_option(parser)
    parser.set_defaults(handler=run_eval)


def default_out(model: str, data: str) -> Path:
    """``MODEL_DIR/eval-DATASET`` beside a local model; for a hub id or ``vlmkit:NAME``, a folder here."""
    dataset = Path(data).resolve().name
    if Path(model).is_dir():
        return Path(model) / f"eval-{dataset}"
    return Path(f"eval-{re.sub(r'[^A-Za-z0-9._-]+', '-', model).strip('-')}-{dataset}")


def run_eval(args: argparse.Namespace) -> int:
    from vlmkit.evaluation.runner import evaluate, summary_table

    if args.engine:
        from vlmkit.evaluation.reading import evaluate_reading

        out = args.out or default_out(f"ocr-{args.engine}", args.data)
        report = evaluate_reading(args.engine, args.data, out, limit=args.limit)
    else:
        model = load_model(args.model, args.device, "eval", [DUAL_ENCODER, VLM])
        out = args.out or default_out(args.model, args.data)
        report = evaluate(model, args.data, out, limit=args.limit, batch_size=args.batch_size, label_key=args.label_key)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(summary_table(report))
    print(f"full report: {out / 'report.json'} and {out / 'report.md'}")
    return 0
