"""``vlmkit bench``: standard benchmarks from their own files; ``vlmkit bench score``: a predictions file scored;
``vlmkit bench tasks``: the registered tasks; ``vlmkit leaderboard``: bench results gathered into one table."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from vlmkit.cli import VLM, HelpFormatter, add_device_option, load_model, require, resolve_device
from vlmkit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run standard benchmarks (MMBench, MMMU, POPE, MME, ...) from their published files",
        description="Ask a model every question of each benchmark file, cache each answer (a re-run resumes), and "
        "score them by the benchmark's official rule; writes results.json and results.md (per category). Files: "
        "VLMEvalKit TSVs, or MMMU records (JSON/JSONL). `vlmkit bench tasks` lists the tasks.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--task", nargs="+", metavar="TASK", help="one or more tasks, e.g. mmbench pope")
    parser.add_argument("--data", nargs="+", metavar="FILE", help="one benchmark file per --task, in order")
    parser.add_argument("--model", help="a vlmkit or Hugging Face model directory, or a hub id (vlmkit backend)")
    parser.add_argument("--backend", choices=("vlmkit", "transformers"), default="vlmkit", help="who runs the model")
    parser.add_argument("--out", type=Path, help="results folder (default: MODEL_DIR/bench, or ./bench-MODEL)")
    parser.add_argument("--limit", type=int, help="the first N questions of each file only (default: all)")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per model call")
    parser.add_argument("--max-new-tokens", type=int, help="tokens per answer (default: the task's)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON, not the summary")
    add_device_option(parser)
    parser.set_defaults(handler=run_bench)
    commands = parser.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")

    score = commands.add_parser(
        "score", help="score a predictions file ({index, prediction} per line)", formatter_class=HelpFormatter
    )
    score.add_argument("--task", required=True, help="the benchmark task")
    score.add_argument("--data", required=True, help="the benchmark file the predictions answer")
    score.add_argument("--predictions", required=True, type=Path, help="JSONL: one {index, prediction} per line")
    score.add_argument("--json", action="store_true", help="print the metrics as JSON (accuracy first)")
    score.set_defaults(handler=run_score)

    tasks = commands.add_parser("tasks", help="list the registered tasks", formatter_class=HelpFormatter)
    tasks.set_defaults(handler=run_tasks)

    board = subparsers.add_parser(
        "leaderboard",
        help="gather bench results into one table and chart",
        description="Read results.json files (or folders holding one) and print one Markdown table of each task's "
        "headline figure, best first; --png draws it as a chart (needs the plot extra).",
        formatter_class=HelpFormatter,
    )
    board.add_argument("runs", nargs="+", help="results.json files or bench result folders")
    board.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    board.add_argument("--png", type=Path, help="draw the table as a bar chart into this PNG")
    board.set_defaults(handler=run_leaderboard)


def default_out(model: str) -> Path:
    if Path(model).is_dir():
        return Path(model) / "bench"
    return Path(f"bench-{re.sub(r'[^A-Za-z0-9._-]+', '-', model).strip('-')}")


def _backend(args: argparse.Namespace):
    from vlmkit.bench.backends import TransformersBackend, VlmkitBackend

    if args.backend == "transformers":
        if not Path(args.model).is_dir():
            raise ConfigError(f"--model {args.model}: --backend transformers takes a local model directory")
        return TransformersBackend(args.model, resolve_device(args.device))
    model = load_model(args.model, args.device, "bench", [VLM])
    return VlmkitBackend(model, Path(args.model).name or args.model)


def run_bench(args: argparse.Namespace) -> int:
    from vlmkit.bench import get_task
    from vlmkit.bench.harness import run_task
    from vlmkit.bench.report import write_results

    if not (args.task and args.data and args.model):
        raise ConfigError("bench needs --task, --data and --model (or a subcommand: score, tasks)")
    if len(args.task) != len(args.data):
        raise ConfigError(f"--data: expected one file per --task ({len(args.task)}), got {len(args.data)}")
    for name, value in (("--limit", args.limit), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise ConfigError(f"{name}: expected a positive number, got {value}")
    tasks = [get_task(name) for name in args.task]  # every name checked before any work
    backend = _backend(args)
    out = args.out or default_out(args.model)
    results = {"model": backend.name, "backend": args.backend, "tasks": {}}
    for task, data in zip(tasks, args.data, strict=True):
        results["tasks"][task.name] = run_task(
            task, data, backend, out, args.limit, args.batch_size, args.max_new_tokens
        )
    json_path, md_path = write_results(out, results)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for name, result in results["tasks"].items():
        figures = "  ".join(f"{k} {v:.4g}" for k, v in result["metrics"].items())
        print(f"{name} ({result['samples']} samples): {figures}")
    print(f"results: {json_path} and {md_path}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    from vlmkit.bench import get_task
    from vlmkit.bench.harness import score_predictions

    result = score_predictions(get_task(args.task), args.data, args.predictions)
    if args.json:
        print(json.dumps({**result["metrics"], "per_category": result["per_category"], "samples": result["samples"]}))
        return 0
    print(f"{args.task} ({result['samples']} samples)")
    for name, value in result["metrics"].items():
        print(f"{name:<20} {value:.4g}")
    return 0


def run_tasks(args: argparse.Namespace) -> int:
    from vlmkit.bench import TASKS

    width = max(len(name) for name in TASKS)
    for name, task in sorted(TASKS.items()):
        print(f"{name:<{width}}  {task.description}")
    return 0


def run_leaderboard(args: argparse.Namespace) -> int:
    from vlmkit.bench.report import leaderboard, markdown_leaderboard, plot_leaderboard
    from vlmkit.files import atomic_write_text

    if args.png:
        require("matplotlib", "plot")
    columns, rows = leaderboard(args.runs)
    table = markdown_leaderboard(columns, rows)
    print(table, end="")
    if args.out:
        atomic_write_text(args.out, table)
    if args.png:
        plot_leaderboard(columns, rows, args.png)
        print(f"chart: {args.png}")
    return 0
