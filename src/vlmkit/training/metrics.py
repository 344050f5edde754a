"""Run metrics: a JSONL log written as training goes, and a PNG of its curves."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from vlmkit.errors import ConfigError, InputError

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """Appends one JSON object per line and flushes, so a crash loses at most the line being written.

    On resume, lines from steps after the resumed checkpoint are dropped first: the resumed run
    writes them again, and a plot must not show the abandoned branch.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        self.path = run_dir / METRICS_FILE
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = [line for line in read_metrics(self.path) if line.get("step", 0) <= resume_step]
            self.path.write_text("".join(json.dumps(line) + "\n" for line in kept), encoding="utf-8")
        elif resume_step is None:
            self.path.write_text("", encoding="utf-8")
        self._handle = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    lines = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            raise InputError(f"{path}:{number}: not a JSON line") from None
    return lines


def plot_metrics(run_dir: Path, out: Path | None = None) -> Path:
    """One panel per logged quantity (loss, lr, temperature, eval metrics) against step.

    Needs matplotlib (the ``plot`` extra); without it, one line saying how to install it, before any work.
    """
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "plotting needs matplotlib, which is not installed; install it with: pip install 'vlmkit[plot]'"
        ) from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vlmkit.files import atomic_open

    path = run_dir / METRICS_FILE
    if not path.exists():
        raise InputError(f"{run_dir}: no {METRICS_FILE}; is this a training run directory?")
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for line in read_metrics(path):
        for key, value in line.items():
            if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                series[key].append((line["step"], value))
    series.pop("epoch", None)
    if not series:
        raise InputError(f"{path}: no numeric metrics to plot")
    columns = min(3, len(series))
    rows = math.ceil(len(series) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3 * rows), squeeze=False)
    for axis, (name, points) in zip(axes.flat, sorted(series.items()), strict=False):
        steps, values = zip(*points, strict=True)
        axis.plot(steps, values, marker="o" if len(points) < 30 else None, markersize=3)
        axis.set_title(name)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(series) :]:
        axis.axis("off")
    figure.suptitle(run_dir.name)
    figure.tight_layout()
    out = out or run_dir / "metrics.png"
    with atomic_open(out, "wb") as handle:
        figure.savefig(handle, format="png", dpi=90)
    plt.close(figure)
    return out
