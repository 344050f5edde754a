"""``vlmkit eval``: every task a model supports, on a dataset split, as a JSON and Markdown report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vlmkit.cli import add_device_option, resolve_device


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a model on a dataset split (report.json + report.md)")
    parser.add_argument("--model", required=True, help="model directory or hub id")
    parser.add_argument("--data", required=True, help="dataset folder (records.jsonl + images)")
    parser.add_argument("--out", type=Path, help="report folder (default: MODEL_DIR/eval-DATASET)")
    parser.add_argument("--limit", type=int, help="evaluate the first N records only")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--label-key", default="color_shape", help="records' labels field for zero-shot")
    add_device_option(parser)
    parser.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from vlmkit.checkpoints import from_pretrained
    from vlmkit.evaluation.runner import evaluate

    model = from_pretrained(args.model, device=resolve_device(args.device))
    out = args.out or Path(args.model) / f"eval-{Path(args.data).name}"
    report = evaluate(model, args.data, out, limit=args.limit, batch_size=args.batch_size, label_key=args.label_key)
    print(json.dumps(report["tasks"], indent=2))
    print(f"report: {out / 'report.md'}")
    return 0
