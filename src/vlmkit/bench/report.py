"""Results of a bench run as JSON and Markdown, and a leaderboard gathered from several runs.

``results.json`` holds ``{"model", "backend", "tasks": {TASK: {"headline", "metrics", "per_category", ...}}}``;
``results.md`` the same as tables, one per task, with a row per category. ``leaderboard`` reads any number of
``results.json`` files (or folders holding one) into one table of each task's headline figure, best first, and
``plot_leaderboard`` draws it as grouped bars (matplotlib, the ``plot`` extra).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vlmkit.errors import InputError
from vlmkit.files import atomic_open, atomic_write_json, atomic_write_text

RESULTS = "results.json"


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown_results(results: dict[str, Any]) -> str:
    lines = [f"# vlmkit bench: {results['model']} ({results['backend']})", ""]
    for task, result in results["tasks"].items():
        names = list(result["metrics"])
        lines += [f"## {task}", "", f"{result['data']}, {result['samples']} samples.", ""]
        lines += ["| category | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
        rows = [("**all**", result["metrics"]), *result["per_category"].items()]
        lines += [f"| {name} | " + " | ".join(_cell(m.get(n, "")) for n in names) + " |" for name, m in rows]
        lines.append("")
    return "\n".join(lines)


def write_results(out_dir: str | Path, results: dict[str, Any]) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    atomic_write_json(out_dir / RESULTS, results)
    atomic_write_text(out_dir / "results.md", markdown_results(results))
    return out_dir / RESULTS, out_dir / "results.md"


def read_results(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    path = path / RESULTS if path.is_dir() else path
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: cannot read bench results ({error})") from None
    if not isinstance(results, dict) or not isinstance(results.get("tasks"), dict) or "model" not in results:
        raise InputError(f"{path}: not a bench results file (expected 'model' and 'tasks', as results.json has)")
    return results


def leaderboard(runs: Sequence[str | Path]) -> tuple[list[str], list[tuple[str, dict[str, float]]]]:
    """(column names ``TASK headline``, rows ``(model, {column: value})``), rows by their first column, best first."""
    columns: dict[str, None] = {}
    rows = []
    for run in runs:
        results = read_results(run)
        values = {}
        for task, result in results["tasks"].items():
            column = f"{task} {result['headline']}"
            columns[column] = None
            values[column] = float(result["metrics"][result["headline"]])
        rows.append((f"{results['model']} ({results['backend']})", values))
    names = list(columns)
    rows.sort(key=lambda row: -row[1].get(names[0], float("-inf")) if names else 0)
    return names, rows


def markdown_leaderboard(columns: list[str], rows: list[tuple[str, dict[str, float]]]) -> str:
    lines = ["| model | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for model, values in rows:
        lines.append(f"| {model} | " + " | ".join(_cell(values[c]) if c in values else "" for c in columns) + " |")
    return "\n".join(lines) + "\n"


def plot_leaderboard(columns: list[str], rows: list[tuple[str, dict[str, float]]], out: str | Path) -> None:
    """Grouped bars: one group per task column, one bar per model (a missing figure is no bar)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(max(4.0, 1.6 * len(columns) * max(1, len(rows)) / 2), 3.5))
    width = 0.8 / max(1, len(rows))
    for number, (model, values) in enumerate(rows):
        spots = [i + number * width for i, c in enumerate(columns) if c in values]
        axes.bar(spots, [values[c] for c in columns if c in values], width, label=model)
    axes.set_xticks([i + width * (len(rows) - 1) / 2 for i in range(len(columns))], columns, rotation=20, ha="right")
    axes.legend(fontsize="small")
    axes.set_title("vlmkit bench")
    figure.tight_layout()
    with atomic_open(out, "wb") as handle:
        figure.savefig(handle, format="png", dpi=120)
    plt.close(figure)
