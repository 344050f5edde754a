"""``vlmkit eval``: run every task a model supports on a dataset split and write a report.

Dual encoders (the ConSE model among them) get zero-shot classification (on ``labels[label_key]``) and
image-text retrieval (on each image's first caption); generative models get VQA, multiple choice with
CircularEval and captioning (see ``evaluation.generative``), or on a clip folder (records that name a
``video``) video QA, temporal grounding and video captioning (``evaluation.video_tasks``). Each task's
predictions are cached under the output folder with a key made of the model's weights, the data and the
settings, so repeating a run reuses finished tasks. The report is written as ``report.json`` and
``report.md``; ``summary_table`` gives its headline figures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from vlmkit.data.records import Record, RecordDataset
from vlmkit.data.shapesworld import vocabulary as shapesworld_vocabulary
from vlmkit.data.shapesworld.language import LABEL_PARTS, ZERO_SHOT_TEMPLATE
from vlmkit.errors import InputError
from vlmkit.evaluation.zero_shot import retrieval_recall, zero_shot_accuracy
from vlmkit.files import atomic_write_json, atomic_write_text
from vlmkit.models import ConSEModel, DualEncoder, VisionLanguageModel
from vlmkit.models.dit import DiT
from vlmkit.tasks.embed import embed_images

if TYPE_CHECKING:
    from vlmkit.evaluation.t2i import T2IEvaluation
    from vlmkit.tasks.segment import MaskCodec

GENERIC_TEMPLATES = ("a photo of a {}.",)


def model_fingerprint(model: nn.Module) -> str:
    """A short hash of the weights and the config: cached results are reused only for the very same model (a
    config setting such as ``frame_delta`` changes the outputs of the same weights)."""
    digest = hashlib.sha256()
    config = getattr(model, "config", None)
    if hasattr(config, "to_dict"):
        digest.update(json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class ResultCache:
    """One JSON file per task in ``out_dir/cache``, valid while its key matches."""

    def __init__(self, out_dir: Path, key: dict[str, Any]) -> None:
        self.folder = out_dir / "cache"
        self.key = key

    def get_or_run(self, task: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        path = self.folder / f"{task}.json"
        if path.exists():
            cached = json.loads(path.read_text(encoding="utf-8"))
            if cached.get("key") == self.key:
                return cached["result"]
        result = run()
        atomic_write_json(path, {"key": self.key, "result": result})
        return result


def dual_encoder_tasks(
    model: DualEncoder | ConSEModel, dataset: RecordDataset, records: list[Record], label_key: str, batch_size: int
) -> dict[str, Callable[[], dict[str, Any]]]:
    def image_embeds() -> torch.Tensor:
        return embed_images(model, [dataset.image_path(r) for r in records], batch_size=batch_size)

    def zero_shot() -> dict[str, Any]:
        labelled = [r for r in records if (r.labels or {}).get(label_key)]
        if not labelled:
            return {"skipped": f"no record has labels.{label_key}"}
        targets = [r.labels[label_key] for r in labelled]  # type: ignore[index]
        classnames = sorted(set(targets) | _classes(dataset, label_key))
        embeds = embed_images(model, [dataset.image_path(r) for r in labelled], batch_size=batch_size)
        return {
            **zero_shot_accuracy(
                model, embeds, targets, classnames, _templates(dataset), LABEL_PARTS.get(label_key, ())
            ),
            "classes": len(classnames),
            "images": len(labelled),
        }

    def retrieval() -> dict[str, Any]:
        captioned = [r for r in records if r.captions]
        if not captioned:
            return {"skipped": "no record has captions"}
        embeds = (
            image_embeds()
            if len(captioned) == len(records)
            else embed_images(model, [dataset.image_path(r) for r in captioned], batch_size=batch_size)
        )
        return {
            **retrieval_recall(model, embeds, [r.captions[:1] for r in captioned], ks=(1, 5, 10)),  # type: ignore[index]
            "images": len(captioned),
        }

    return {"zero_shot": zero_shot, "retrieval": retrieval}


def _templates(dataset: RecordDataset) -> tuple[str, ...]:
    """ShapesWorld's captions name the labelled object with their own phrase; elsewhere CLIP's prompt."""
    return (ZERO_SHOT_TEMPLATE,) if shapesworld_vocabulary(dataset.root) else GENERIC_TEMPLATES


def _classes(dataset: RecordDataset, label_key: str) -> set[str]:
    """All colour-shape classes the generator could produce (ShapesWorld records them next to the data)."""
    vocabulary = shapesworld_vocabulary(dataset.root)
    if label_key != "color_shape" or vocabulary is None:
        return set()
    colors, shapes = vocabulary
    return {f"{c} {s}" for c in colors for s in shapes}


def evaluate(
    model: nn.Module,
    data: str | Path,
    out_dir: str | Path,
    limit: int | None = None,
    batch_size: int = 64,
    label_key: str = "color_shape",
    t2i: T2IEvaluation | None = None,
    mask_tokenizer: MaskCodec | None = None,
    only: Sequence[str] = (),
) -> dict[str, Any]:
    """Run every supported task (or those named in ``only``), write ``report.json`` and ``report.md``, and
    return the report.

    A grounding VLM's masks are scored (segmentation mIoU, cIoU) when ``mask_tokenizer`` decodes its codes.

    A text-to-image model (DiT) gets GenEval, CLIPScore and a Frechet distance on a ShapesWorld split
    instead (``evaluation.t2i``; ``t2i`` says how, ``limit`` and the others do not apply)."""
    if isinstance(model, DiT):
        from vlmkit.evaluation.t2i import evaluate_t2i

        if limit:
            raise InputError("limit: a text-to-image model is evaluated on a number of prompts per task instead")
        if only or mask_tokenizer is not None:
            raise InputError("tasks, mask_tokenizer: not for a text-to-image model (it runs GenEval, CLIPScore, FD)")
        return evaluate_t2i(model, data, out_dir, t2i)
    if not isinstance(model, (DualEncoder, ConSEModel, VisionLanguageModel)):
        raise InputError(
            f"a {type(model).__name__} cannot be evaluated: give a dual encoder (CLIP, SigLIP, ConSE), "
            "a vision-language model or a text-to-image model"
        )
    dataset = RecordDataset(data)
    records = dataset.records[:limit] if limit else dataset.records
    if not records:
        raise InputError(f"{data}: no records to evaluate")
    out_dir = Path(out_dir)
    key = {
        "model": model_fingerprint(model),
        "data": str(Path(data).resolve()),
        "records": len(records),
        "batch_size": batch_size,
        "label_key": label_key,
    }
    if isinstance(model, (DualEncoder, ConSEModel)):
        tasks = dual_encoder_tasks(model, dataset, records, label_key, batch_size)
    elif any("video" in r.extra for r in records):  # a clip folder: questions, moments, captions of videos
        from vlmkit.evaluation.video_tasks import video_tasks

        tasks = video_tasks(model, dataset, records, batch_size)
    else:
        from vlmkit.evaluation.generative import generative_tasks

        tasks = generative_tasks(model, dataset, records, batch_size, mask_tokenizer)
    unknown = sorted(set(only) - set(tasks))
    if unknown:
        raise InputError(f"tasks: {', '.join(unknown)} not among this model's tasks on {data} ({', '.join(tasks)})")
    extra: dict[str, dict[str, Any]] = {}
    if mask_tokenizer is not None:
        if "segmentation" not in tasks:
            raise InputError(
                f"mask_tokenizer: only a grounding VLM with mask tokens, on objects with masks, uses one ({data})"
            )
        codec = model_fingerprint(mask_tokenizer) if isinstance(mask_tokenizer, nn.Module) else repr(mask_tokenizer)
        extra["segmentation"] = {"mask_tokenizer": codec}
    model.eval()
    chosen = {name: run for name, run in tasks.items() if not only or name in only}
    results = {
        name: ResultCache(out_dir, key | extra.get(name, {})).get_or_run(name, run) for name, run in chosen.items()
    }
    report = {"model_type": type(model).__name__, "data": str(data), "records": len(records), "tasks": results}
    write_report(out_dir, report)
    return report


def write_report(out_dir: Path, report: dict[str, Any]) -> None:
    atomic_write_json(out_dir / "report.json", report)
    atomic_write_text(out_dir / "report.md", markdown_report(report))


def markdown_report(report: dict[str, Any]) -> str:
    lines = [f"# vlmkit eval: {report['model_type']} on {report['data']}", "", f"{report['records']} records.", ""]
    for task, result in report["tasks"].items():
        lines += [f"## {task}", "", "| metric | value |", "| --- | --- |"]
        for name, value in _flatten(result):
            lines.append(f"| {name} | {value:.4f} |" if isinstance(value, float) else f"| {name} | {value} |")
        lines.append("")
    return "\n".join(lines)


def summary_table(report: dict[str, Any]) -> str:
    """The report's headline figures, one row per (task, metric): each task's top-level numbers, without
    the per-type breakdowns and examples that ``report.json`` and ``report.md`` hold."""
    rows = [("task", "metric", "value")]
    for task, result in report["tasks"].items():
        if "skipped" in result:
            rows.append((task, "skipped", str(result["skipped"])))
            continue
        for name, value in result.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            rows.append((task, name, f"{value:.4f}" if isinstance(value, float) else str(value)))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    title = f"{report['model_type']} on {report['data']} ({report['records']} records)"
    lines = [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip() for row in rows]
    return "\n".join([title, *lines])


def _flatten(result: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in result.items():
        if isinstance(value, dict):
            items += _flatten(value, f"{prefix}{key}/")
        elif not isinstance(value, list):
            items.append((prefix + key, value))
    return items
