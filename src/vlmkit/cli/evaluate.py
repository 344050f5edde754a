"""``vlmkit eval``: every task a model supports, on a dataset split, as a JSON and Markdown report."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from vlmkit.cli import DUAL_ENCODER, T2I, VLM, HelpFormatter, add_device_option, load_model
from vlmkit.documents.engines import ENGINES

if TYPE_CHECKING:
    from vlmkit.evaluation.t2i import T2IEvaluation


def task_names(text: str) -> list[str]:
    """``--tasks a,b`` as names; an empty list is refused, since it would silently mean every task."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected task names separated by commas, got {text!r}")
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a model on a dataset split (report.json + report.md)",
        description="Run every task the model supports (dual encoders: zero-shot classification and retrieval; "
        "vision-language models: VQA, multiple choice, captioning, image reliance; text-to-image models: GenEval, "
        "CLIPScore with --clip, a Frechet distance on EfficientNet-Lite0), or measure an OCR engine's "
        "reading (--engine: CER, WER, word recall on pages with ground-truth text, e.g. DocWorld), print a "
        "summary and write the full report to report.json and report.md.",
        formatter_class=HelpFormatter,
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="dual encoder, vision-language or text-to-image model directory or hub id")
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
    parser.add_argument(
        "--tasks",
        type=task_names,
        default=[],
        help="only these tasks, comma-separated (e.g. detection_all,referring); default: every task the model has",
    )
    parser.add_argument(
        "--mask-tokenizer",
        help="grounding VLMs: the mask tokenizer the model was trained with; adds segmentation (mIoU, cIoU)",
    )
    t2i = parser.add_argument_group("text-to-image models (a ShapesWorld split as --data)")
    t2i.add_argument("--clip", help="dual encoder to measure CLIPScore with (default: no CLIPScore)")
    t2i.add_argument("--per-task", type=int, default=50, help="distinct GenEval prompts per task")
    t2i.add_argument("--images-per-prompt", type=int, default=4, help="images drawn for each prompt")
    t2i.add_argument("--steps", type=int, default=20, help="sampler steps")
    t2i.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale")
    t2i.add_argument("--seed", type=int, default=0, help="image k of each prompt starts from seed + k")
    t2i.add_argument("--unseen-only", action="store_true", help="only prompts naming a held-out colour-shape pair")
    add_device_option(parser)
    parser.set_defaults(handler=run_eval)


def default_out(model: str, data: str) -> Path:
    """``MODEL_DIR/eval-DATASET`` beside a local model; for a hub id or ``vlmkit:NAME``, a folder here."""
    dataset = Path(data).resolve().name
    if Path(model).is_dir():
        return Path(model) / f"eval-{dataset}"
    return Path(f"eval-{re.sub(r'[^A-Za-z0-9._-]+', '-', model).strip('-')}-{dataset}")


def t2i_evaluation(args: argparse.Namespace) -> T2IEvaluation:
    """The text-to-image options, checked before any image is drawn, with the ``--clip`` scorer loaded."""
    import dataclasses

    from vlmkit.evaluation.t2i import T2IEvaluation
    from vlmkit.tasks.imagine import ImagineSettings

    settings = ImagineSettings(steps=args.steps, guidance=args.guidance, seed=args.seed)
    options = T2IEvaluation(args.per_task, args.images_per_prompt, settings, args.unseen_only)
    options.check()
    if args.clip is None:
        return options
    clip = load_model(args.clip, args.device, "eval --clip", [DUAL_ENCODER])
    return dataclasses.replace(options, clip=clip, clip_name=args.clip)


def run_eval(args: argparse.Namespace) -> int:
    from vlmkit.evaluation.runner import evaluate, summary_table

    if args.engine:
        from vlmkit.evaluation.reading import evaluate_reading

        out = args.out or default_out(f"ocr-{args.engine}", args.data)
        report = evaluate_reading(args.engine, args.data, out, limit=args.limit)
    else:
        model = load_model(args.model, args.device, "eval", [DUAL_ENCODER, VLM, T2I])
        out = args.out or default_out(args.model, args.data)
        t2i = t2i_evaluation(args) if type(model).__name__ == "DiT" else None
        codec = None
        if args.mask_tokenizer:
            from vlmkit.tasks.segment import load_mask_codec

            codec = load_mask_codec(args.mask_tokenizer, device=str(model.device))
        report = evaluate(
            model,
            args.data,
            out,
            limit=args.limit,
            batch_size=args.batch_size,
            label_key=args.label_key,
            t2i=t2i,
            mask_tokenizer=codec,
            only=args.tasks,
        )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(summary_table(report))
    print(f"full report: {out / 'report.json'} and {out / 'report.md'}")
    return 0
