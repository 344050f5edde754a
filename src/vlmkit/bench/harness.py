"""One harness for every task and model: read, ask in batches (each answer cached as it comes), score.

Predictions go to ``OUT/TASK/predictions.jsonl``, one ``{"index", "prediction"}`` line per sample, appended and
flushed batch by batch, so an interrupted run resumes where it stopped. ``OUT/TASK/key.json`` says what made them
(the weights' fingerprint, the data file with its size and time, the generation length); a run with another key
starts the file afresh.
A predictions file in the same layout from anywhere else (another harness, an API model) is scored by
``score_predictions`` exactly as the harness scores its own, as VLMEvalKit scores its prediction files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vlmkit.bench.backends import Backend
from vlmkit.bench.formats import Sample
from vlmkit.bench.tasks import Task
from vlmkit.errors import InputError
from vlmkit.files import atomic_write_json
from vlmkit.progress import progress


def load_samples(task: Task, data: str | Path, limit: int | None = None) -> list[Sample]:
    """The samples ``task`` asks, from ``data``; ``limit`` keeps the first N questions with all their copies
    (an MMBench question's rotations, MME's pair), so a limited run is scored by the same rule."""
    samples = task.expand(task.read(Path(data)))
    if limit is not None:
        kept = set(list(dict.fromkeys(s.group for s in samples))[:limit])
        samples = [s for s in samples if s.group in kept]
    if not samples:
        raise InputError(f"{data}: no questions to ask")
    return samples


def read_predictions(path: str | Path) -> dict[str, str]:
    """``{"index", "prediction"}`` lines as ``{index: prediction}`` (the last line for an index wins)."""
    path = Path(path)
    predictions: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read predictions ({error})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{path}: line {number}: not valid JSON") from None
        if not isinstance(row, dict) or "index" not in row or not isinstance(row.get("prediction"), str):
            raise InputError(f"{path}: line {number}: expected {{'index': ..., 'prediction': str}}")
        predictions[str(row["index"])] = row["prediction"]
    return predictions


def _cached(path: Path) -> dict[str, str]:
    """The predictions already written; a last line cut short by a crash is dropped (it is asked again)."""
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    done: dict[str, str] = {}
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[str(row["index"])] = row["prediction"]
    return done


def predict(
    task: Task,
    samples: Sequence[Sample],
    backend: Backend,
    folder: Path,
    key: Mapping[str, Any],
    batch_size: int = 8,
    max_new_tokens: int | None = None,
) -> dict[str, str]:
    """Every sample's response, from the cache in ``folder`` where its key matches, else from ``backend``."""
    folder.mkdir(parents=True, exist_ok=True)
    path, key_path = folder / "predictions.jsonl", folder / "key.json"
    if key_path.exists() and json.loads(key_path.read_text(encoding="utf-8")) != dict(key):
        path.unlink(missing_ok=True)
    atomic_write_json(key_path, dict(key))
    done = _cached(path)
    todo = [s for s in samples if s.index not in done]
    tokens = max_new_tokens or task.max_new_tokens
    with path.open("a", encoding="utf-8") as log, progress(total=len(todo), desc=task.name, unit="q") as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            answers = backend.answer([task.prompt(s) for s in batch], tokens)
            for sample, answer in zip(batch, answers, strict=True):
                done[sample.index] = answer
                log.write(json.dumps({"index": sample.index, "prediction": answer}) + "\n")
            log.flush()
            os.fsync(log.fileno())
            bar.update(len(batch))
    return done


def score(task: Task, samples: Sequence[Sample], predictions: Mapping[str, str]) -> dict[str, Any]:
    """The task's metrics overall and per category, with the answers read from each response."""
    missing = [s.index for s in samples if s.index not in predictions]
    if missing:
        raise InputError(f"predictions: none for index {missing[0]} ({len(missing)} of {len(samples)} missing)")
    extracted = [task.extract(s, predictions[s.index]) for s in samples]
    categories: dict[str, list[int]] = {}
    for position, sample in enumerate(samples):
        categories.setdefault(sample.category, []).append(position)
    per_category = {}
    if len(categories) > 1:
        for name, positions in categories.items():
            per_category[name or "(none)"] = task.metric(
                [samples[i] for i in positions], [extracted[i] for i in positions]
            )
    return {
        "headline": task.headline,
        "metrics": task.metric(samples, extracted),
        "per_category": per_category,
        "samples": len(samples),
    }


def run_task(
    task: Task,
    data: str | Path,
    backend: Backend,
    out_dir: str | Path,
    limit: int | None = None,
    batch_size: int = 8,
    max_new_tokens: int | None = None,
) -> dict[str, Any]:
    """Ask ``task``'s questions from ``data`` (cached under ``out_dir/TASK``) and score them."""
    samples = load_samples(task, data, limit)
    key = {
        "task": task.name,
        "model": backend.fingerprint,
        "data": str(Path(data).resolve()),
        "data_size_mtime": [Path(data).stat().st_size, Path(data).stat().st_mtime_ns],  # an edited file is new
        "max_new_tokens": max_new_tokens or task.max_new_tokens,
    }
    predictions = predict(task, samples, backend, Path(out_dir) / task.name, key, batch_size, max_new_tokens)
    return {"data": str(data), **score(task, samples, predictions)}


def score_predictions(task: Task, data: str | Path, predictions: str | Path) -> dict[str, Any]:
    """Score a predictions file (``{"index", "prediction"}`` lines) against ``data`` by ``task``'s rule."""
    return {"data": str(data), **score(task, load_samples(task, data), read_predictions(predictions))}
