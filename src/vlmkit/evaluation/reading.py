"""How well an OCR engine reads a dataset of pages whose text is known (DocWorld, or any records carrying a
``document`` in ``Document.to_dict()`` form): CER, WER and word recall against the ground truth in reading
order, overall (micro: edits summed over pages / reference length summed) and per document kind, with pages/s.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from vlmkit.data.pages import page_lines
from vlmkit.data.records import Record, RecordDataset
from vlmkit.errors import InputError
from vlmkit.evaluation.documents import EditCounts, word_recall
from vlmkit.evaluation.runner import ResultCache, write_report
from vlmkit.processing.images import load_image
from vlmkit.progress import progress
from vlmkit.tasks.documents import read_image

WORST_EXAMPLES = 3


def truth_text(record: Record) -> str:
    return "\n".join(page_lines(record))


class _Tally:
    """Pages' edit counts summed (CER and WER micro-averaged) and their word recalls averaged."""

    def __init__(self) -> None:
        self.counts = EditCounts(0, 0, 0, 0)
        self.recall_sum = 0.0
        self.pages = 0

    def add(self, counts: EditCounts, recall: float) -> None:
        self.counts = EditCounts(*(a + b for a, b in zip(self.counts, counts, strict=True)))
        self.recall_sum += recall
        self.pages += 1

    def result(self) -> dict[str, Any]:
        return {
            "cer": self.counts.cer,
            "wer": self.counts.wer,
            "word_recall": self.recall_sum / max(self.pages, 1),
            "pages": self.pages,
        }


def reading_scores(
    dataset: RecordDataset, records: list[Record], engine: str, enhance: bool = True, show_progress: bool = True
) -> dict[str, Any]:
    """CER / WER / word recall of ``engine`` on ``records``, overall and ``by_kind`` (``meta.kind``)."""
    overall, by_kind = _Tally(), defaultdict(_Tally)
    worst: list[tuple[float, str, str, str]] = []
    seconds = 0.0
    pages = progress(records, desc=f"reading ({engine})", unit="page", disable=not show_progress)
    for record in pages:
        truth = truth_text(record)
        image = load_image(dataset.image_path(record))
        start = time.perf_counter()
        prediction = read_image(image, engine=engine, enhance=enhance).text
        seconds += time.perf_counter() - start
        counts, recall = EditCounts.of(prediction, truth), word_recall(prediction, truth)
        overall.add(counts, recall)
        by_kind[str((record.meta or {}).get("kind", "page"))].add(counts, recall)
        worst.append((counts.cer, record.image, prediction, truth))
    worst.sort(key=lambda item: -item[0])
    return {
        **overall.result(),
        "pages_per_s": overall.pages / seconds if seconds else 0.0,
        "engine": engine,
        "by_kind": {kind: tally.result() for kind, tally in sorted(by_kind.items())},
        "worst": [{"image": i, "cer": c, "read": p, "truth": t} for c, i, p, t in worst[:WORST_EXAMPLES]],
    }


def evaluate_reading(
    engine: str, data: str | Path, out_dir: str | Path, limit: int | None = None, enhance: bool = True
) -> dict[str, Any]:
    """``vlmkit eval --engine``: the reading task on a dataset split, reported like a model's evaluation."""
    dataset = RecordDataset(data)
    records = dataset.records[:limit] if limit else dataset.records
    if not records:
        raise InputError(f"{data}: no records to evaluate")
    key = {"engine": engine, "enhance": enhance, "data": str(Path(data).resolve()), "records": len(records)}
    cache = ResultCache(Path(out_dir), key)
    result = cache.get_or_run("reading", lambda: reading_scores(dataset, records, engine, enhance))
    report = {"model_type": f"OCR {engine}", "data": str(data), "records": len(records), "tasks": {"reading": result}}
    write_report(Path(out_dir), report)
    return report
