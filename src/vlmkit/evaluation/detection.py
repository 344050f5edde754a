"""Grounding metrics and the grounding protocol of ``vlmkit eval``: detection AP, referring accuracy and
mask IoU, scored from what a VLM writes.

- **Detection**: COCO box AP@[.5:.95], AP50 and AP75 (``evaluation.boxes.coco_average_precision``, which
  agrees with pycocotools), categories being the labels' text. A generative model gives no confidence:
  a detection without a score counts as 1.0, so the ranking is the generation order, image by image
  (pycocotools' stable sort does the same with tied scores).
- **Referring accuracy** (RefCOCO's box accuracy): the share of expressions whose predicted box has
  IoU >= 0.5 with the referent's; no box is a miss.
- **Masks**, as RefCOCO segmentation reports them: mIoU, the mean of per-expression mask IoUs, and
  cIoU, the total intersection over the total union of all expressions (large objects weigh more);
  a missing mask has intersection 0 and union the referent's area.

``grounding_tasks`` runs them on a dataset split's objects (``label``, ``box``, ``mask`` and the referring
expressions in ``refexp`` (ShapesWorld) or ``expression``): all-objects detection (the model names each
object itself), detection of the scene's labels (``detect a ; b``), referring expressions, and with a
mask tokenizer, segmentation of each expression. Run it once per split folder (``test``,
``compositional``, ...) to compare splits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlmkit.data.grounding import expressions
from vlmkit.data.records import Record, RecordDataset
from vlmkit.data.shapesworld.masks import rle_decode
from vlmkit.errors import InputError
from vlmkit.evaluation.boxes import CocoAP, ImageBoxes, box_iou, coco_average_precision
from vlmkit.processing.locations import ALL_OBJECTS_PROMPT, Box, detect_prompt
from vlmkit.tasks.ground import ALL_OBJECTS_BUDGET, TOKENS_PER_OBJECT, GroundedObject, Grounding, ground_many
from vlmkit.tasks.segment import MaskCodec, segment_many

REFERRING_IOU = 0.5
EXAMPLES = 5

LabelledBox = tuple[str, Sequence[float]]


def detection_ap(truth: Sequence[Sequence[LabelledBox]], predictions: Sequence[Sequence[GroundedObject]]) -> CocoAP:
    """COCO AP of ``predictions[i]`` against ``truth[i]`` ((label, box) pairs) for each image ``i``."""
    names = sorted({label for image in truth for label, _ in image} | {o.label for p in predictions for o in p})
    ids = {name: i for i, name in enumerate(names)}
    ground_truth = [
        ImageBoxes(np.array([b for _, b in image], dtype=float).reshape(-1, 4), [ids[label] for label, _ in image])
        for image in truth
    ]
    detections = [
        ImageBoxes(
            np.array([o.box for o in image], dtype=float).reshape(-1, 4),
            [ids[o.label] for o in image],
            [1.0 if o.score is None else o.score for o in image],
        )
        for image in predictions
    ]
    result = coco_average_precision(ground_truth, detections)
    return CocoAP(result.ap, result.ap50, result.ap75, {names[k]: v for k, v in result.per_category.items()})


def referring_accuracy(
    predicted: Sequence[Box | None], truth: Sequence[Box], threshold: float = REFERRING_IOU
) -> float:
    """Share of referents whose predicted box (None: none given) has IoU >= ``threshold`` with the truth."""
    if len(predicted) != len(truth):
        raise InputError(f"predicted: expected one box or None per referent ({len(truth)}), got {len(predicted)}")
    if not truth:
        raise InputError("truth: no referents to score")
    hits = sum(
        box is not None and box_iou([box], [gt])[0, 0] >= threshold for box, gt in zip(predicted, truth, strict=True)
    )
    return hits / len(truth)


@dataclass(frozen=True)
class MaskScores:
    """RefCOCO's segmentation figures: ``miou`` (mean per-expression IoU) and ``ciou`` (cumulative)."""

    miou: float
    ciou: float
    count: int


def mask_scores(predicted: Sequence[np.ndarray | None], truth: Sequence[np.ndarray]) -> MaskScores:
    """mIoU and cIoU of predicted boolean masks (None: none given) against the true ones, same sizes."""
    if len(predicted) != len(truth):
        raise InputError(f"predicted: expected one mask or None per referent ({len(truth)}), got {len(predicted)}")
    if not truth:
        raise InputError("truth: no masks to score")
    ious, intersections, unions = [], 0, 0
    for index, (mask, gt) in enumerate(zip(predicted, truth, strict=True)):
        gt = np.asarray(gt, dtype=bool)
        pred = np.zeros_like(gt) if mask is None else np.asarray(mask, dtype=bool)
        if pred.shape != gt.shape:
            raise InputError(f"predicted[{index}]: expected a mask of shape {gt.shape}, got {pred.shape}")
        intersection, union = int((pred & gt).sum()), int((pred | gt).sum())
        ious.append(intersection / union if union else 0.0)
        intersections += intersection
        unions += union
    return MaskScores(float(np.mean(ious)), intersections / unions if unions else 0.0, len(truth))


# ------------------------------------------------------------------------------------------ the protocol


def referring_set(scenes: Sequence[Record]) -> list[tuple[int, int, str]]:
    """The expressions the protocol asks, as (scene index, object index, expression): one per object,
    rotating through its expressions so every phrasing is asked somewhere. Diagnostics that score the same
    referents (``benchmarks/segment_given_box.py``) take them from here."""
    return [
        (i, j, exps[(i + j) % len(exps)])
        for i, record in enumerate(scenes)
        for j, o in enumerate(record.objects or [])
        if (exps := expressions(o))
    ]


def grounding_tasks(
    model,
    dataset: RecordDataset,
    records: list[Record],
    batch_size: int,
    mask_tokenizer: MaskCodec | None = None,
) -> dict[str, Callable[[], dict[str, Any]]]:
    """The grounding protocol's tasks on ``records`` (those with objects), by report name."""
    scenes = [r for r in records if r.objects]
    images = [dataset.image_path(r) for r in scenes]
    truth = [[(o.label, o.box) for o in r.objects or []] for r in scenes]
    referents = [(images[i], (scenes[i].objects or [])[j], text) for i, j, text in referring_set(scenes)]

    def scored(prompts: list[str], budget: int) -> list[Grounding]:
        return [g for _, g in ground_many(model, images, prompts, budget, batch_size)]

    def detection(prompts: list[str], budget: int) -> dict[str, Any]:
        groundings = scored(prompts, budget)
        ap = detection_ap(truth, [g.objects for g in groundings])
        return {
            "ap": ap.ap,
            "ap50": ap.ap50,
            "ap75": ap.ap75,
            "images": len(groundings),
            "unparsed_rate": _unparsed_rate(groundings),
            "per_category_ap": ap.per_category,
            "examples": _examples(prompts, groundings, truth),
        }

    def all_objects() -> dict[str, Any]:
        return detection([ALL_OBJECTS_PROMPT] * len(images), ALL_OBJECTS_BUDGET)

    def labelled() -> dict[str, Any]:
        labels = [sorted({label for label, _ in image}) for image in truth]
        budget = TOKENS_PER_OBJECT * (max(len(image) for image in truth) + 1)
        return detection([detect_prompt(names) for names in labels], budget)

    def referring() -> dict[str, Any]:
        if not referents:
            return {"skipped": "no object has a referring expression (refexp or expression)"}
        answers = ground_many(
            model, [r[0] for r in referents], [detect_prompt(r[2]) for r in referents], TOKENS_PER_OBJECT, batch_size
        )
        boxes = [g.objects[0].box if g.objects else None for _, g in answers]
        groundings = [g for _, g in answers]
        return {
            "accuracy": referring_accuracy(boxes, [r[1].box for r in referents]),
            "expressions": len(referents),
            "unparsed_rate": _unparsed_rate(groundings),
            "examples": _examples([r[2] for r in referents], groundings, [[(r[1].label, r[1].box)] for r in referents]),
        }

    def segmentation() -> dict[str, Any]:
        masked = [r for r in referents if isinstance(r[1].mask, dict)]
        if not masked:
            return {"skipped": "no referent has an RLE mask"}
        results = segment_many(
            model, [r[0] for r in masked], [r[2] for r in masked], mask_tokenizer, batch_size=batch_size
        )  # type: ignore[arg-type]
        predicted = [g.objects[0].mask if g.objects else None for g in results]
        scores = mask_scores(predicted, [rle_decode(r[1].mask) for r in masked])
        return {"miou": scores.miou, "ciou": scores.ciou, "expressions": scores.count}

    if not scenes:
        return {}
    tasks = {"detection_all": all_objects, "detection_labelled": labelled, "referring": referring}
    if mask_tokenizer is not None:
        tasks["segmentation"] = segmentation
    return tasks


def _unparsed_rate(groundings: Sequence[Grounding]) -> float:
    """Share of answers with a fragment that was not an object (a malformed or truncated output)."""
    return sum(bool(g.unparsed) for g in groundings) / len(groundings) if groundings else 0.0


def _examples(
    prompts: Sequence[str], groundings: Sequence[Grounding], truth: Sequence[Sequence[LabelledBox]]
) -> list[dict[str, Any]]:
    return [
        {"prompt": p, "output": g.text, "truth": [{"label": label, "box": list(box)} for label, box in t]}
        for p, g, t in list(zip(prompts, groundings, truth, strict=True))[:EXAMPLES]
    ]
