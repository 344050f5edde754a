"""Box and mask metrics: hand-computed IoU, precision/recall and AP, and agreement with
pycocotools' COCOeval on a random small detection set."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from vlmkit.errors import InputError
from vlmkit.evaluation import ImageBoxes, box_iou, coco_average_precision, mask_iou, precision_recall


def test_box_iou_hand_computed() -> None:
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 5.0, 5.0]])
    expected = [[1 / 7, 1.0, 0.0], [0.0, 0.25, 0.0]]
    assert box_iou(a, b) == pytest.approx(np.array(expected))
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


def test_mask_iou_hand_computed() -> None:
    masks = np.zeros((3, 4, 4), dtype=bool)
    masks[0, :2, :2] = True  # 4 pixels
    masks[1, :2, :] = True  # 8 pixels, contains mask 0
    iou = mask_iou(masks, torch.from_numpy(masks).to(torch.uint8))
    assert iou == pytest.approx(np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(InputError):
        mask_iou(masks, masks[:, :3])


def _image(boxes: list[list[float]], labels: list[int], scores: list[float] | None = None) -> ImageBoxes:
    return ImageBoxes(np.array(boxes, dtype=float).reshape(-1, 4), np.array(labels, dtype=int), scores)


def test_ground_truth_as_detections_scores_one() -> None:
    gt = [_image([[0, 0, 10, 10], [20, 20, 30, 40]], [1, 2]), _image([[5, 5, 9, 9]], [1])]
    det = [_image(g.boxes.tolist(), g.labels.tolist(), [0.9] * len(g.labels)) for g in gt]
    result = coco_average_precision(gt, det)
    assert (result.ap, result.ap50, result.ap75) == (1.0, 1.0, 1.0)
    assert result.per_category == {1: 1.0, 2: 1.0}
    pr = precision_recall(gt, det)
    assert (pr.precision, pr.recall, pr.false_negatives) == (1.0, 1.0, 0)


def test_hand_computed_ap_and_precision_recall() -> None:
    # Two ground-truth boxes; detections by score: hit, miss (wrong place), hit.
    gt = [_image([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 0])]
    det = [_image([[0, 0, 10, 10], [100, 100, 110, 110], [50, 50, 60, 60]], [0, 0, 0], [0.9, 0.8, 0.7])]
    # Precision after each detection: 1, 1/2, 2/3 at recall 1/2, 1/2, 1; made monotone: 1, 2/3, 2/3.
    # Recall points 0..0.50 (51 of them) read 1, points 0.51..1 (50) read 2/3.
    expected = (51 * 1 + 50 * 2 / 3) / 101
    result = coco_average_precision(gt, det)
    assert result.ap == pytest.approx(expected) and result.ap50 == pytest.approx(expected)
    pr = precision_recall(gt, det)
    assert (pr.true_positives, pr.false_positives, pr.false_negatives) == (2, 1, 0)
    assert pr.precision == pytest.approx(2 / 3)
    assert precision_recall(gt, det, score_threshold=0.75).recall == 0.5


def test_greedy_matching_goes_by_score_and_threshold() -> None:
    gt = [_image([[0, 0, 10, 10]], [0])]
    # The higher-scoring, worse-placed detection (IoU 0.5) takes the only box; the better one is a FP.
    det = [_image([[0, 0, 10, 5], [0, 0, 10, 9]], [0, 0], [0.9, 0.8])]
    pr = precision_recall(gt, det, iou_threshold=0.5)
    assert (pr.true_positives, pr.false_positives) == (1, 1)
    assert precision_recall(gt, det, iou_threshold=0.6).true_positives == 1  # now only the 0.9-IoU one fits
    wrong_label = [_image([[0, 0, 10, 10]], [1], [0.9])]
    assert precision_recall(gt, wrong_label).true_positives == 0


def _random_scene(rng: np.random.Generator, num_images: int = 8, num_categories: int = 3):
    ground_truth, detections = [], []
    for _ in range(num_images):
        count = int(rng.integers(0, 5))
        xy = rng.uniform(0, 80, (count, 2))
        gt_boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (count, 2))], axis=1)
        gt_labels = rng.integers(0, num_categories, count)
        keep = rng.random(count) < 0.8  # some objects are missed
        jitter = rng.normal(0, 3, (count, 4))
        det_boxes = (gt_boxes + jitter)[keep]
        det_labels = gt_labels[keep]
        extra = int(rng.integers(0, 3))  # false positives
        xy = rng.uniform(0, 80, (extra, 2))
        det_boxes = np.concatenate([det_boxes, np.concatenate([xy, xy + rng.uniform(5, 30, (extra, 2))], axis=1)])
        det_boxes[:, 2:] = np.maximum(det_boxes[:, 2:], det_boxes[:, :2] + 1)
        det_labels = np.concatenate([det_labels, rng.integers(0, num_categories, extra)])
        ground_truth.append(ImageBoxes(gt_boxes, gt_labels))
        detections.append(ImageBoxes(det_boxes, det_labels, rng.random(len(det_boxes))))
    return ground_truth, detections


def _cocoeval(ground_truth: list[ImageBoxes], detections: list[ImageBoxes], num_categories: int) -> np.ndarray:
    coco_module = pytest.importorskip("pycocotools.coco")
    cocoeval_module = pytest.importorskip("pycocotools.cocoeval")

    def xywh(box: np.ndarray) -> list[float]:
        return [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]

    annotations, results = [], []
    for image_id, (gt, det) in enumerate(zip(ground_truth, detections, strict=True), start=1):
        for box, label in zip(gt.boxes, gt.labels, strict=True):
            w, h = xywh(box)[2:]
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label) + 1,
                 "bbox": xywh(box), "area": w * h, "iscrowd": 0}
            )  # fmt: skip
        for box, label, score in zip(det.boxes, det.labels, det.scores, strict=True):
            results.append(
                {"image_id": image_id, "category_id": int(label) + 1, "bbox": xywh(box), "score": float(score)}
            )
    with contextlib.redirect_stdout(io.StringIO()):
        coco = coco_module.COCO()
        coco.dataset = {
            "images": [{"id": i} for i in range(1, len(ground_truth) + 1)],
            "annotations": annotations,
            "categories": [{"id": c + 1} for c in range(num_categories)],
        }
        coco.createIndex()
        evaluator = cocoeval_module.COCOeval(coco, coco.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pycocotools(seed: int) -> None:
    ground_truth, detections = _random_scene(np.random.default_rng(seed))
    stats = _cocoeval(ground_truth, detections, num_categories=3)
    result = coco_average_precision(ground_truth, detections)
    assert (result.ap, result.ap50, result.ap75) == pytest.approx(tuple(stats[:3]), abs=1e-3)
    assert 0.0 < result.ap < 1.0  # the scene is neither trivial nor hopeless


def test_bad_inputs_raise_input_error() -> None:
    with pytest.raises(InputError):
        ImageBoxes(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(InputError):
        ImageBoxes(np.array([[5, 0, 1, 1]]), np.zeros(1))
    with pytest.raises(InputError):
        ImageBoxes(np.zeros((2, 4)), np.zeros(3))
    gt = [_image([[0, 0, 1, 1]], [0])]
    with pytest.raises(InputError):
        coco_average_precision(gt, gt)  # detections without scores
    with pytest.raises(InputError):
        precision_recall(gt, [])
    with pytest.raises(InputError):
        coco_average_precision([_image([], [])], [_image([], [], [])])
