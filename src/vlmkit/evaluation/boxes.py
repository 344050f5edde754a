"""Detection and segmentation metrics: IoU, precision/recall at one IoU, COCO-style AP.

Boxes are ``[x0, y0, x1, y1]`` in pixels (the dataset format), areas are ``(x1-x0) * (y1-y0)`` with
no "+1", and the IoU of two boxes whose union is empty is 0.

Matching (shared by precision/recall and AP), per image and per category: detections are visited
from the highest score down (ties keep input order); each takes the still-unmatched ground-truth
box of its category with the highest IoU, provided that IoU is ``>=`` the threshold. A matched
detection is a true positive, any other a false positive; unmatched ground truth is missed.

COCO AP (as ``pycocotools.cocoeval.COCOeval`` for bounding boxes, area range "all", no crowd
regions): per category, at most ``max_detections`` highest-scoring detections per image are kept;
detections of all images are ranked by score and the precision/recall curve is made monotone
(precision at recall r = the best precision at any recall >= r) and read at the 101 recall points
0, 0.01, ..., 1 (0 where the recall is never reached). AP at one IoU threshold is the mean of
those 101 values; AP@[.5:.95] averages the thresholds 0.50, 0.55, ..., 0.95; the reported AP is the
mean over categories that have ground truth (categories seen only in detections are ignored, as
in COCO).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlmkit.errors import InputError
from vlmkit.evaluation.arrays import to_numpy

COCO_IOU_THRESHOLDS = tuple(np.linspace(0.5, 0.95, 10).tolist())
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def box_iou(boxes_a: Any, boxes_b: Any) -> np.ndarray:
    """Pairwise IoU matrix (len(a) x len(b)) of two sets of ``[x0, y0, x1, y1]`` boxes."""
    a = _boxes(boxes_a, "boxes_a").astype(np.float64)
    b = _boxes(boxes_b, "boxes_b").astype(np.float64)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    intersection = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    union = _area(a)[:, None] + _area(b)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def mask_iou(masks_a: Any, masks_b: Any) -> np.ndarray:
    """Pairwise IoU matrix of two stacks of binary masks, (N x H x W) and (M x H x W); empty union -> 0."""
    a = to_numpy(masks_a, "masks_a", 3)
    b = to_numpy(masks_b, "masks_b", 3)
    if a.shape[1:] != b.shape[1:]:
        raise InputError(f"masks_b: expected masks of size {a.shape[1:]} like masks_a, got {b.shape[1:]}")
    flat_a = (a.reshape(len(a), -1) != 0).astype(np.float64)
    flat_b = (b.reshape(len(b), -1) != 0).astype(np.float64)
    intersection = flat_a @ flat_b.T
    union = flat_a.sum(1)[:, None] + flat_b.sum(1)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


@dataclass(frozen=True)
class ImageBoxes:
    """The boxes of one image: ground truth (no scores) or detections (with ``scores``).

    Accepts lists, numpy arrays or tensors; stores checked numpy arrays (boxes and scores float64).
    """

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = _boxes(self.boxes, "boxes").astype(np.float64)
        labels = to_numpy(self.labels, "labels", 1) if np.size(self.labels) else np.zeros(0, dtype=np.int64)
        if len(labels) != len(boxes):
            raise InputError(f"labels: expected one label per box ({len(boxes)}), got {len(labels)}")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", labels)
        if self.scores is not None:
            scores = to_numpy(self.scores, "scores", 1).astype(np.float64)
            if len(scores) != len(boxes):
                raise InputError(f"scores: expected one score per box ({len(boxes)}), got {len(scores)}")
            object.__setattr__(self, "scores", scores)


@dataclass(frozen=True)
class PrecisionRecall:
    """Counts and rates at one IoU threshold, over all images and categories."""

    precision: float
    recall: float
    true_positives: int
    false_positives: int
    false_negatives: int


def precision_recall(
    ground_truth: Sequence[ImageBoxes],
    detections: Sequence[ImageBoxes],
    iou_threshold: float = 0.5,
    score_threshold: float = 0.0,
) -> PrecisionRecall:
    """Precision and recall of the detections scoring ``>= score_threshold`` (matching above).

    With no detections precision is 1.0 (nothing claimed wrongly); with no ground truth recall is 1.0.
    """
    _check_pairing(ground_truth, detections)
    tp = fp = num_gt = 0
    for gt, det in zip(ground_truth, detections, strict=True):
        keep = det.scores >= score_threshold
        det_boxes, det_labels, det_scores = det.boxes[keep], det.labels[keep], det.scores[keep]
        num_gt += len(gt.boxes)
        for label in np.unique(det_labels):
            det_of = det_labels == label
            gt_of = gt.boxes[gt.labels == label]
            matched = _greedy_match(det_boxes[det_of], det_scores[det_of], gt_of, [iou_threshold])[0]
            tp += int(matched.sum())
            fp += int((~matched).sum())
    return PrecisionRecall(
        precision=tp / (tp + fp) if tp + fp else 1.0,
        recall=tp / num_gt if num_gt else 1.0,
        true_positives=tp,
        false_positives=fp,
        false_negatives=num_gt - tp,
    )


@dataclass(frozen=True)
class CocoAP:
    """COCO AP@[.5:.95], AP50, AP75 (means over categories; NaN if that IoU was not evaluated) and
    AP@[.5:.95] per category label."""

    ap: float
    ap50: float
    ap75: float
    per_category: dict[Any, float]


def coco_average_precision(
    ground_truth: Sequence[ImageBoxes],
    detections: Sequence[ImageBoxes],
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
    max_detections: int = 100,
) -> CocoAP:
    """COCO-style box AP (see the module docstring); ``ground_truth[i]`` and ``detections[i]`` are one image."""
    _check_pairing(ground_truth, detections)
    thresholds = list(iou_thresholds)
    per_category = _match_by_category(ground_truth, detections, thresholds, max_detections)
    categories = sorted(per_category)
    if not categories:
        raise InputError("ground_truth: no ground-truth boxes to evaluate against")
    table = np.array([_category_ap(*per_category[c]) for c in categories])
    column = {round(threshold, 6): index for index, threshold in enumerate(thresholds)}

    def mean_at(threshold: float) -> float:
        return float(table[:, column[threshold]].mean()) if threshold in column else float("nan")

    return CocoAP(
        ap=float(table.mean()),
        ap50=mean_at(0.5),
        ap75=mean_at(0.75),
        per_category={c: float(row.mean()) for c, row in zip(categories, table, strict=True)},
    )


def _match_by_category(
    ground_truth: Sequence[ImageBoxes],
    detections: Sequence[ImageBoxes],
    thresholds: list[float],
    max_detections: int,
) -> dict[Any, tuple[int, list[np.ndarray], list[np.ndarray]]]:
    """Per category with ground truth: (#ground truth, kept scores per image, matches per image)."""
    categories: dict[Any, tuple[int, list[np.ndarray], list[np.ndarray]]] = {}
    for gt, det in zip(ground_truth, detections, strict=True):
        for label in set(gt.labels.tolist()) | set(det.labels.tolist()):
            gt_of = gt.boxes[gt.labels == label]
            det_of = det.labels == label
            order = np.argsort(-det.scores[det_of], kind="stable")[:max_detections]
            boxes_of, scores_of = det.boxes[det_of][order], det.scores[det_of][order]
            num_gt, scores, matched = categories.get(label, (0, [], []))
            scores.append(scores_of)
            matched.append(_greedy_match(boxes_of, scores_of, gt_of, thresholds))
            categories[label] = (num_gt + len(gt_of), scores, matched)
    return {label: entry for label, entry in categories.items() if entry[0] > 0}


def _category_ap(num_gt: int, scores: list[np.ndarray], matched: list[np.ndarray]) -> np.ndarray:
    """AP of one category at each IoU threshold, from its per-image scores and matches."""
    order = np.argsort(-np.concatenate(scores), kind="stable")
    hits = np.concatenate(matched, axis=1)[:, order]
    true_positives = np.cumsum(hits, axis=1)
    false_positives = np.cumsum(~hits, axis=1)
    ap = np.zeros(len(hits))
    for t in range(len(hits)):
        recall = true_positives[t] / num_gt
        precision = true_positives[t] / np.maximum(true_positives[t] + false_positives[t], 1)
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        positions = np.searchsorted(recall, _RECALL_POINTS, side="left")
        reached = positions < len(recall)
        ap[t] = envelope[positions[reached]].sum() / len(_RECALL_POINTS)
    return ap


def _greedy_match(
    det_boxes: np.ndarray, det_scores: np.ndarray, gt_boxes: np.ndarray, thresholds: list[float]
) -> np.ndarray:
    """(thresholds x detections) booleans: whether each detection matches a ground truth (see module)."""
    matched = np.zeros((len(thresholds), len(det_boxes)), dtype=bool)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return matched
    ious = box_iou(det_boxes, gt_boxes)
    for t, threshold in enumerate(thresholds):
        taken = np.zeros(len(gt_boxes), dtype=bool)
        for d in np.argsort(-det_scores, kind="stable"):
            candidates = np.where(taken, -1.0, ious[d])
            best = int(np.argmax(candidates))
            if candidates[best] >= threshold:
                taken[best] = True
                matched[t, d] = True
    return matched


def _boxes(values: Any, name: str) -> np.ndarray:
    array = to_numpy(values, name, 2) if np.size(values) else np.zeros((0, 4))
    if array.shape[1] != 4:
        raise InputError(f"{name}: expected boxes of 4 numbers [x0, y0, x1, y1], got shape {tuple(array.shape)}")
    if ((array[:, 2:] - array[:, :2]) < 0).any():
        raise InputError(f"{name}: every box needs x1 >= x0 and y1 >= y0 ([x0, y0, x1, y1] format)")
    return array


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _check_pairing(ground_truth: Sequence[ImageBoxes], detections: Sequence[ImageBoxes]) -> None:
    if len(ground_truth) != len(detections):
        raise InputError(
            f"detections: expected one entry per ground-truth image ({len(ground_truth)}), got {len(detections)}"
        )
    for index, det in enumerate(detections):
        if det.scores is None:
            raise InputError(f"detections[{index}]: detections need scores")
